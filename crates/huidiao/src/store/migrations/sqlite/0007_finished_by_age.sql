-- Only finished deliveries are pruned by age: pending ones leave this index, so publishing,
-- leasing and retrying no longer update it, and no planner can pick it to find pending work.
DROP INDEX deliveries_by_age;
CREATE INDEX deliveries_by_age ON deliveries(status, updated_at) WHERE status <> 'pending';

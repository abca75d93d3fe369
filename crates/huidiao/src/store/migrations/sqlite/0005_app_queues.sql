-- Leasing walks the apps with pending deliveries and takes each app's oldest due ones from this
-- index; lease_owner names the node holding a lease, so one node at a time delivers an app.
ALTER TABLE deliveries ADD COLUMN lease_owner INTEGER;
CREATE INDEX deliveries_queue ON deliveries(app_id, next_attempt_at) WHERE status = 'pending';
-- The operator's cap on an app's deliveries per second (NULL: none).
ALTER TABLE api_apps ADD COLUMN max_per_second INTEGER;

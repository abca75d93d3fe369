-- Retention prunes sent and given-up operator notifications by age, as it does deliveries.
CREATE INDEX operator_notifications_finished ON operator_notifications (status, updated_at) WHERE status <> 'pending';

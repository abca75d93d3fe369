-- Notifications to the operator's webhook (--operator-webhook-url), written in the transaction
-- of what they tell (an attempt recorded, an app paused or resumed), then pushed and retried
-- like deliveries. status: pending, delivered, failed (given up). A leased row's next_attempt_at
-- is its lease's end, so a node that dies sending it lets it fall due again.
CREATE TABLE operator_notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX operator_notifications_due ON operator_notifications (next_attempt_at) WHERE status = 'pending';

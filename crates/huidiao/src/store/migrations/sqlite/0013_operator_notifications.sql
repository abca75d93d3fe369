-- Notifications to the operator's webhook (--operator-webhook-url), written in the transaction
-- of what they tell (an attempt recorded, an app paused or resumed), then pushed and retried
-- like deliveries. status: pending, delivered, failed (given up). A leased row's next_attempt_at
-- is its lease's end, so a node that dies sending it lets it fall due again.
CREATE TABLE operator_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX operator_notifications_due ON operator_notifications (next_attempt_at) WHERE status = 'pending';

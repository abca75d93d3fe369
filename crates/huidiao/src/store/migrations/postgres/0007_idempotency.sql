-- Idempotent publishing (operator-api.md "Idempotent publishing"). The key an event was
-- published with, shown by GET /admin/v1/events/:event_id.
ALTER TABLE events ADD COLUMN idempotency_key TEXT;

-- Which event holds each account's key: the primary key makes a key one event per account,
-- whoever publishes it; a key past --idempotency-window is taken over by the next event
-- published with it. fingerprint is SHA-256 (hex) of the event's canonical form, to tell a
-- retry from a different event. Rows go with their event when retention deletes it.
CREATE TABLE idempotency_keys (
    coze_account_id BIGINT NOT NULL,
    idem_key        TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    event_id        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (coze_account_id, idem_key)
);

-- Idempotent publishing (operator-api.md "Idempotent publishing"). The key an event was
-- published with, shown by GET /admin/v1/events/:event_id.
ALTER TABLE events ADD COLUMN idempotency_key TEXT;

-- Which event holds each account's key: the primary key makes a key one event per account,
-- whoever publishes it; a key past --idempotency-window is taken over by the next event
-- published with it. fingerprint is SHA-256 (hex) of the event's canonical form, to tell a
-- retry from a different event. Rows go with their event when retention deletes it. A rowid
-- table, not WITHOUT ROWID: rows are appended in publish order and only the primary key's
-- (smaller) index takes the scattered inserts of arbitrary keys, so a batch dirties fewer pages.
CREATE TABLE idempotency_keys (
    coze_account_id INTEGER NOT NULL,
    idem_key        TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    event_id        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (coze_account_id, idem_key)
);

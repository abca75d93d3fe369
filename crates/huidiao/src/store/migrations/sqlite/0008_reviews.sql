-- A channel's review of a published bot, one per (connector, bot), and every change of it
-- (coze-callbacks.md §6). Kept apart from deliveries: pruning the delivery log keeps reviews.
CREATE TABLE reviews (
    connector_id INTEGER NOT NULL,
    bot_id TEXT NOT NULL,
    audit_status INTEGER NOT NULL,
    reason TEXT,
    share_link TEXT,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connector_id, bot_id)
);
CREATE TABLE review_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id INTEGER NOT NULL,
    bot_id TEXT NOT NULL,
    audit_status INTEGER NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX review_history_by_review ON review_history(connector_id, bot_id, id);

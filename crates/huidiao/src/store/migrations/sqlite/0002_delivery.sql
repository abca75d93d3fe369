-- Events as published, one delivery per (event, receiving app), and every attempt of a delivery.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    event_uuid      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    coze_account_id INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    published_at    INTEGER NOT NULL
);

-- status: pending | succeeded | failed | cancelled | skipped.
-- A pending delivery is due at next_attempt_at; lease_until marks it taken by a dispatcher.
-- body is the exact JSON pushed, built once at publish time so retries send the same bytes.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES events(id),
    app_id           INTEGER NOT NULL REFERENCES api_apps(id),
    event_key        TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    round_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    audit            TEXT,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_app ON deliveries(app_id, id);
CREATE INDEX deliveries_by_age ON deliveries(status, updated_at);
CREATE INDEX deliveries_by_event ON deliveries(event_id);

CREATE TABLE attempts (
    id                   INTEGER PRIMARY KEY,
    delivery_id          INTEGER NOT NULL REFERENCES deliveries(id),
    at                   INTEGER NOT NULL,
    status_code          INTEGER,
    latency_ms           INTEGER NOT NULL,
    error                TEXT,
    response_body_prefix TEXT
);
CREATE INDEX attempts_by_delivery ON attempts(delivery_id, id);

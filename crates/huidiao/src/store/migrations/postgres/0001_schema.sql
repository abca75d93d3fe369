-- The whole schema of the PostgreSQL backend: the same tables and columns as the embedded one.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Numbers handed to nodes as they start, for the node part of ids.
CREATE SEQUENCE node_numbers;

CREATE TABLE accounts (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    edition    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id         BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          BIGINT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    name        TEXT,
    lookup_key  TEXT NOT NULL UNIQUE,
    secret_hash BYTEA NOT NULL,
    permissions TEXT NOT NULL,
    expires_at  BIGINT,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE connectors (
    id         BIGINT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    creator_id BIGINT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_apps (
    id           BIGINT PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    owner_id     BIGINT NOT NULL REFERENCES users(id),
    app_type     TEXT NOT NULL,
    name         TEXT,
    connector_id BIGINT REFERENCES connectors(id),
    callback_url TEXT,
    verify_token TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX api_apps_by_account ON api_apps(account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX api_apps_by_owner ON api_apps(owner_id, id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX api_apps_one_per_connector ON api_apps(connector_id)
    WHERE connector_id IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE subscriptions (
    id         BIGINT PRIMARY KEY,
    app_id     BIGINT NOT NULL REFERENCES api_apps(id),
    event_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, event_type)
);
CREATE INDEX subscriptions_by_type ON subscriptions(event_type, app_id);

CREATE TABLE events (
    id              BIGINT PRIMARY KEY,
    event_uuid      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    coze_account_id BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    published_at    BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id               BIGINT PRIMARY KEY,
    event_id         BIGINT NOT NULL REFERENCES events(id),
    app_id           BIGINT NOT NULL REFERENCES api_apps(id),
    event_key        TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    round_attempts   BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    lease_until      BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    audit            TEXT,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_app ON deliveries(app_id, id);
CREATE INDEX deliveries_by_age ON deliveries(status, updated_at);
CREATE INDEX deliveries_by_event ON deliveries(event_id);
CREATE INDEX deliveries_leased ON deliveries(app_id) WHERE lease_until IS NOT NULL;

CREATE TABLE attempts (
    id                   BIGSERIAL PRIMARY KEY,
    delivery_id          BIGINT NOT NULL REFERENCES deliveries(id),
    at                   BIGINT NOT NULL,
    status_code          BIGINT,
    latency_ms           BIGINT NOT NULL,
    error                TEXT,
    response_body_prefix TEXT,
    request_headers      TEXT
);
CREATE INDEX attempts_by_delivery ON attempts(delivery_id, id);

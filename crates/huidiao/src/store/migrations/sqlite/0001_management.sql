-- Tenants, tokens, connectors, callback apps and their subscriptions.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    edition    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    name        TEXT,
    lookup_key  TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    permissions TEXT NOT NULL,
    expires_at  INTEGER,
    revoked     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE connectors (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    creator_id INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Deleted apps stay (deleted_at set) so that their delivery log keeps its rows.
CREATE TABLE api_apps (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    app_type     TEXT NOT NULL,
    name         TEXT,
    connector_id INTEGER REFERENCES connectors(id),
    callback_url TEXT,
    verify_token TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX api_apps_by_account ON api_apps(account_id, id) WHERE deleted_at IS NULL;
CREATE INDEX api_apps_by_owner ON api_apps(owner_id, id) WHERE deleted_at IS NULL;
-- One connector has at most one live connector app.
CREATE UNIQUE INDEX api_apps_one_per_connector ON api_apps(connector_id)
    WHERE connector_id IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE subscriptions (
    id         INTEGER PRIMARY KEY,
    app_id     INTEGER NOT NULL REFERENCES api_apps(id),
    event_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (app_id, event_type)
);
CREATE INDEX subscriptions_by_type ON subscriptions(event_type, app_id);

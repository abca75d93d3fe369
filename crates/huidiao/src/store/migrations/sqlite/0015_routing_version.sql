-- Publishing keeps each node's candidates (who may receive what) in memory; every change to
-- what decides them moves this counter, in the changing transaction, and a commit of events
-- looked up at an older value is refused and looked up again (publishing/routing.rs).
CREATE TABLE routing_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO routing_version (id, version) VALUES (1, 0);
CREATE TRIGGER apps_routing_insert AFTER INSERT ON api_apps
BEGIN UPDATE routing_version SET version = version + 1; END;
CREATE TRIGGER apps_routing_update
AFTER UPDATE OF app_type, account_id, connector_id, callback_url, deleted_at ON api_apps
BEGIN UPDATE routing_version SET version = version + 1; END;
CREATE TRIGGER apps_routing_delete AFTER DELETE ON api_apps
BEGIN UPDATE routing_version SET version = version + 1; END;
CREATE TRIGGER subscriptions_routing_insert AFTER INSERT ON subscriptions
BEGIN UPDATE routing_version SET version = version + 1; END;
CREATE TRIGGER subscriptions_routing_update AFTER UPDATE ON subscriptions
BEGIN UPDATE routing_version SET version = version + 1; END;
CREATE TRIGGER subscriptions_routing_delete AFTER DELETE ON subscriptions
BEGIN UPDATE routing_version SET version = version + 1; END;

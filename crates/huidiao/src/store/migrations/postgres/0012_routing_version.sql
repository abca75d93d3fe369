-- Publishing keeps each node's candidates (who may receive what) in memory; every change to
-- what decides them moves this counter, in the changing transaction, so that every node sees it
-- at its next commit: a commit of events looked up at an older value is refused and looked up
-- again (publishing/routing.rs).
CREATE TABLE routing_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
INSERT INTO routing_version (id, version) VALUES (1, 0);
CREATE FUNCTION bump_routing_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE routing_version SET version = version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER apps_routing
AFTER INSERT OR DELETE OR UPDATE OF app_type, account_id, connector_id, callback_url, deleted_at ON api_apps
FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version();
CREATE TRIGGER subscriptions_routing AFTER INSERT OR UPDATE OR DELETE ON subscriptions
FOR EACH STATEMENT EXECUTE FUNCTION bump_routing_version();

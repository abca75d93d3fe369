-- Whether the operator marked a user a plugin developer: only they may subscribe to
-- benefit.plugin.scale.* (coze-callbacks.md §6, event-type eligibility).
ALTER TABLE users ADD COLUMN plugin_developer INTEGER NOT NULL DEFAULT 0;

-- The connector_ids an event was published with, as a JSON array, for the operator's event
-- reads (GET /admin/v1/events). Events stored before this knew only their deliveries: they get
-- the connectors of the connector apps they were delivered to.
ALTER TABLE events ADD COLUMN connector_ids TEXT NOT NULL DEFAULT '[]';
UPDATE events SET connector_ids = (
    SELECT json_group_array(connector_id) FROM (
        SELECT DISTINCT a.connector_id FROM deliveries d JOIN api_apps a ON a.id = d.app_id
        WHERE d.event_id = events.id AND a.connector_id IS NOT NULL ORDER BY a.connector_id
    )
);
CREATE INDEX events_by_account ON events(coze_account_id, id);

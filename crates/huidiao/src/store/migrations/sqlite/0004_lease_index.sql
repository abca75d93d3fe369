-- Live leases per app, counted at every lease to hold each app to its share.
CREATE INDEX deliveries_leased ON deliveries(app_id) WHERE lease_until IS NOT NULL;

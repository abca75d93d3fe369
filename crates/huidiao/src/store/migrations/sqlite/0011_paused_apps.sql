-- A paused app is pushed nothing until it is resumed (by its owner, the operator, a receiver
-- answering 410 Gone or --disable-after); its deliveries wait as pending. paused_at is NULL while
-- the app is active. failing_since is when its current run of failed attempts began (NULL after
-- a success), for --disable-after.
ALTER TABLE api_apps ADD COLUMN paused_at INTEGER;
ALTER TABLE api_apps ADD COLUMN paused_reason TEXT;
ALTER TABLE api_apps ADD COLUMN failing_since INTEGER;

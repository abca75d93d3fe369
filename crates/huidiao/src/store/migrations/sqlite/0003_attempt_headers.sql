-- The signature headers each attempt carried (a JSON object), for the delivery log.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;

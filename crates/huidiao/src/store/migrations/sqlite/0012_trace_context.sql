-- The W3C traceparent of the request that published a delivery's event, when traces are exported:
-- the delivery's spans (lease, push, record) join that trace, and the push carries a child of it.
-- Kept beside the body, which is written once and read with every lease.
ALTER TABLE delivery_bodies ADD COLUMN traceparent TEXT;

-- Remember a webhook delivery; no row back means it was seen before (a retried delivery).
INSERT INTO webhook_deliveries (delivery_id) VALUES ($1)
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id;

-- Forget a delivery whose handling failed, so the sender's retry is applied.
DELETE FROM webhook_deliveries WHERE delivery_id = $1;

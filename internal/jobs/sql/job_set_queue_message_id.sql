-- Store the queue's message id on a job that is still in one of @statuses.
UPDATE jobs
SET queue_message_id = @queue_message_id,
    version          = version + 1,
    updated_at       = now()
WHERE id = @id AND status = ANY (@statuses::text[])
RETURNING id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id;

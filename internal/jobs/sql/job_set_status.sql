-- Conditional transition: only a job whose status is one of @from moves. No row back means the
-- job is missing or in another status; the caller reads it to tell which.
UPDATE jobs
SET status      = @to::text,
    error       = COALESCE(@error::text, error),
    started_at  = CASE WHEN @set_started_at::bool THEN now() ELSE started_at END,
    finished_at = CASE WHEN @set_finished_at::bool THEN now() ELSE finished_at END,
    version     = version + 1,
    updated_at  = now()
WHERE id = @id AND status = ANY (@from::text[])
RETURNING id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id;

-- A running crawl job's progress (and the external crawler's id once known).
UPDATE jobs
SET pages_discovered = @discovered, pages_fetched = @fetched, pages_failed = @failed,
    external_id = COALESCE(NULLIF(@external_id::text, ''), external_id),
    version = version + 1, updated_at = now()
WHERE id = @id AND status = 'in_progress' AND type = 'crawl'
RETURNING id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id;

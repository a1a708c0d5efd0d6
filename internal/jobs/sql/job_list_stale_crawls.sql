-- Active crawl jobs with no progress written since @before: their crawler stopped (the server
-- that ran it went away) or the external crawler's events went missing.
SELECT id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs
WHERE type = 'crawl' AND status IN ('pending', 'in_progress') AND updated_at < @before
ORDER BY updated_at
LIMIT @max;

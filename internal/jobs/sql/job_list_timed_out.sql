-- Active jobs that have been active longer than their timeout.
SELECT id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs
WHERE status IN ('pending', 'in_progress')
  AND created_at + make_interval(secs => timeout_seconds) < now()
ORDER BY created_at
LIMIT @max;

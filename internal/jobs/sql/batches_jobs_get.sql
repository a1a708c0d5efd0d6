-- Read the jobs of the named batches.
SELECT id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs
WHERE id IN (SELECT job_id FROM job_batches WHERE id = ANY (@ids::uuid[]));

-- Active processing jobs with batches, all of them done: the worker that finished the last one
-- died before finishing the job.
SELECT id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs j
WHERE j.status IN ('pending', 'in_progress')
  AND EXISTS (SELECT 1 FROM job_batches b WHERE b.job_id = j.id)
  AND NOT EXISTS (SELECT 1 FROM job_batches b WHERE b.job_id = j.id AND b.state <> 'done')
ORDER BY created_at
LIMIT @max;

-- Derive the job's counters from its per-document rows, so they always agree with them.
UPDATE jobs
SET processed_count = c.processed,
    error_count     = c.failed,
    chunk_count     = c.chunks,
    version         = version + 1,
    updated_at      = now()
FROM (
    SELECT count(*) FILTER (WHERE d.status IN ('succeeded', 'skipped'))                          AS processed,
           count(*) FILTER (WHERE d.status = 'failed')                                            AS failed,
           COALESCE(sum(d.chunk_count) FILTER (WHERE d.status IN ('succeeded', 'skipped')), 0)::bigint AS chunks
    FROM job_documents d
    WHERE d.job_id = @id
) AS c
WHERE jobs.id = @id
RETURNING jobs.id, jobs.type, jobs.status, jobs.source_id, jobs.document_ids, jobs.chunk_count, jobs.processed_count, jobs.error_count,
    jobs.queue_message_id, jobs.error, jobs.retry_of, jobs.version, jobs.timeout_seconds, jobs.created_at, jobs.updated_at,
    jobs.started_at, jobs.finished_at, jobs.pages_discovered, jobs.pages_fetched, jobs.pages_failed, jobs.external_id;

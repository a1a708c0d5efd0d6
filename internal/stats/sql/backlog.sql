-- The processing backlog: batches of active jobs waiting for a worker and held by one, the
-- documents in the waiting ones, and how long (seconds) the longest-waiting one has waited since
-- it was enqueued (or created, if its message never went out). Batches of finished jobs keep
-- their last state but are never worked on, so they do not count. Uses job_batches_open_idx.
SELECT count(*) FILTER (WHERE b.state = 'queued')                                    AS queued,
       count(*) FILTER (WHERE b.state = 'running')                                   AS running,
       coalesce(sum(cardinality(b.document_ids)) FILTER (WHERE b.state = 'queued'), 0)::bigint AS queued_documents,
       coalesce(extract(epoch FROM now() - min(coalesce(b.enqueued_at, b.created_at))
                                           FILTER (WHERE b.state = 'queued')), 0)::float8 AS oldest_queued_seconds
FROM job_batches b
JOIN jobs j ON j.id = b.job_id
WHERE b.state IN ('queued', 'running')
  AND j.status IN ('pending', 'in_progress');

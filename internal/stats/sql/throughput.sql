-- Per-document results recorded in the last $1 seconds, by outcome (Postgres's
-- clock, so every worker and server replica counts alike). Uses job_documents_finished_idx.
SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'skipped')   AS skipped,
       count(*) FILTER (WHERE status = 'failed')    AS failed
FROM job_documents
WHERE status <> 'pending'
  AND updated_at > now() - make_interval(secs => $1::float8);

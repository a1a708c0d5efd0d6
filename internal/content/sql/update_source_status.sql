-- Moves a source to status $2 only if its current status is one of $4 (the statuses that may
-- move to $2): the check and the write are one statement, so concurrent updates cannot both
-- pass a stale check. Writing the same status and error again leaves updated_at alone.
WITH updated AS (
    UPDATE sources
    SET status = $2::text,
        error = $3::text,
        updated_at = CASE WHEN status = $2::text AND error = $3::text THEN updated_at ELSE now() END
    WHERE id = $1 AND status = ANY ($4::text[])
    RETURNING id, name, url, crawler, crawl_options, status, error, created_at, updated_at
)
SELECT s.id, s.name, coalesce(s.url, ''), s.crawler, s.crawl_options, s.status, s.error,
    s.created_at, s.updated_at, stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at
FROM updated s
/*source_stats*/;

-- Deletes a source; documents and jobs go with it by ON DELETE CASCADE. The counts read the
-- statement's snapshot, taken before the delete, so they say what was removed.
-- The same statement records that the source's vectors must be purged (vector_purges).
WITH deleted AS (
    DELETE FROM sources WHERE id = $1
    RETURNING id, name, url, crawler, crawl_options, status, error, created_at, updated_at
), purge AS (
    INSERT INTO vector_purges (source_id)
    SELECT id FROM deleted
    ON CONFLICT (source_id) DO UPDATE SET requested_at = now()
)
SELECT s.id, s.name, coalesce(s.url, ''), s.crawler, s.crawl_options, s.status, s.error,
    s.created_at, s.updated_at, stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at
FROM deleted s
/*source_stats*/;

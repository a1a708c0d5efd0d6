-- Deletes a source; documents and jobs go with it by ON DELETE CASCADE. The count reads the
-- statement's snapshot, taken before the delete, so it says how many documents were removed.
-- The same statement records that the source's vectors must be purged (vector_purges).
WITH deleted AS (
    DELETE FROM sources WHERE id = $1
    RETURNING id, name, url, crawler, crawl_options, status, error, created_at, updated_at
), purge AS (
    INSERT INTO vector_purges (source_id)
    SELECT id FROM deleted
    ON CONFLICT (source_id) DO UPDATE SET requested_at = now()
)
SELECT d.id, d.name, coalesce(d.url, ''), d.crawler, d.crawl_options, d.status, d.error,
    d.created_at, d.updated_at,
    (SELECT count(*) FROM documents doc WHERE doc.source_id = d.id) AS document_count
FROM deleted d;

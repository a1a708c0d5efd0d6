-- Record what a document's vectors were just built from, with the document's source (for the
-- source's chunk count). A document deleted meanwhile has no row to refer to: nothing is written
-- (the foreign key would refuse it); written is then 0. The same statement reads the status of
-- the job the document was processed for ($5; NULL when none is given or the job is gone), so a
-- worker learns of a cancel between documents without a statement of its own.
WITH put AS (
    INSERT INTO document_index_state (document_id, source_id, content_hash, fingerprint, chunk_count, indexed_at)
    SELECT d.id, d.source_id, $2, $3, $4, now()
    FROM documents d
    WHERE d.id = $1
    ON CONFLICT (document_id) DO UPDATE
    SET content_hash = EXCLUDED.content_hash, fingerprint = EXCLUDED.fingerprint,
        chunk_count = EXCLUDED.chunk_count, indexed_at = EXCLUDED.indexed_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM put) AS written, (SELECT status FROM jobs WHERE id = $5) AS job_status;

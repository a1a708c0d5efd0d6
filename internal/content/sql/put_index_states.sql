-- Record what the vectors of a group of documents were just built from ($1 ids, $2 content
-- hashes, $3 fingerprints, $4 chunk counts, in step), with each document's source (for the
-- source's chunk count), in one statement. Only a document whose content is still the one the
-- vectors were built from gets its state: one deleted meanwhile (no row to refer to) or changed
-- meanwhile (new content uploaded or crawled while the worker worked: its vectors may just have
-- overwritten those of the newer content) is missing from the ids returned, and the caller
-- tells which by reading the document. Each document is looked up by its key (LATERAL ...
-- LIMIT 1), never found by scanning the table, whatever the statistics the plan was made with
-- (see get_documents_with_states.sql). Rows are written in id order, so that two writers of
-- overlapping groups lock them in the same order. The same statement reads the status of the
-- job the documents were processed for ($5; NULL when none is given or the job is gone), so a
-- worker learns of a cancel between documents without a statement of its own. With $6 true the
-- statement's own transaction (the implicit one of a statement sent alone) commits without
-- waiting for the WAL to reach disk: an index state lost in a Postgres crash only makes its
-- document be indexed again (under the same chunk ids), and the next synchronous commit on the
-- server (a worker's report of that document) flushes it too, since the WAL is written in
-- order. Never true inside a caller's transaction.
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[])
        AS i (document_id, content_hash, fingerprint, chunk_count)
), put AS (
    INSERT INTO document_index_state (document_id, source_id, content_hash, fingerprint, chunk_count, indexed_at)
    SELECT d.id, d.source_id, i.content_hash, i.fingerprint, i.chunk_count, now()
    FROM input i
    CROSS JOIN LATERAL (
        SELECT d.id, d.source_id FROM documents d
        WHERE d.id = i.document_id AND d.content_hash = i.content_hash LIMIT 1
    ) d
    ORDER BY d.id
    ON CONFLICT (document_id) DO UPDATE
    SET content_hash = EXCLUDED.content_hash, fingerprint = EXCLUDED.fingerprint,
        chunk_count = EXCLUDED.chunk_count, indexed_at = EXCLUDED.indexed_at
    RETURNING document_id
)
SELECT ARRAY(SELECT document_id FROM put) AS written, (SELECT status FROM jobs WHERE id = $5) AS job_status,
    CASE WHEN $6::boolean THEN set_config('synchronous_commit', 'off', true) END AS async_commit;

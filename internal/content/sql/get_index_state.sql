-- What a document's vectors were last built from; no row if it was never indexed.
SELECT document_id, content_hash, fingerprint, chunk_count, indexed_at
FROM document_index_state
WHERE document_id = $1;

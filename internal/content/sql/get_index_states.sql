-- What the vectors of each of a group of documents were last built from; no row for a document
-- never indexed.
SELECT document_id, content_hash, fingerprint, chunk_count, indexed_at
FROM document_index_state
WHERE document_id = ANY ($1::uuid[]);

-- A group of documents with their index states (NULL when a document was never indexed), read
-- in one statement and so from one snapshot: a state that matches its document's content hash
-- was built from that content.
SELECT d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes, d.metadata,
    d.created_at, d.updated_at, d.content,
    s.content_hash, s.fingerprint, s.chunk_count, s.indexed_at
FROM documents d
LEFT JOIN document_index_state s ON s.document_id = d.id
WHERE d.id = ANY ($1::uuid[]);

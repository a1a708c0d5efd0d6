-- A group of documents with their index states (NULL when a document was never indexed), read
-- in one statement and so from one snapshot: a state that matches its document's content hash
-- was built from that content. Each id is looked up by its key (LATERAL ... LIMIT 1, which the
-- planner cannot turn into a join): a plan made while the tables were small, or before their
-- statistics caught up with a large intake, would otherwise hash-join a sequential scan of each
-- table, and every later group would read all of both (docs/decisions/0029).
SELECT d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes, d.metadata,
    d.created_at, d.updated_at, d.content,
    s.content_hash, s.fingerprint, s.chunk_count, s.indexed_at
FROM (SELECT DISTINCT u.id FROM unnest($1::uuid[]) AS u (id)) i
CROSS JOIN LATERAL (
    SELECT d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes, d.metadata,
        d.created_at, d.updated_at, d.content
    FROM documents d WHERE d.id = i.id LIMIT 1
) d
LEFT JOIN LATERAL (
    SELECT s.content_hash, s.fingerprint, s.chunk_count, s.indexed_at
    FROM document_index_state s WHERE s.document_id = i.id LIMIT 1
) s ON true;

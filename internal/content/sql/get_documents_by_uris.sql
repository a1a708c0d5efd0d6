-- Summaries of a source's documents by uri: the rows an upsert left unchanged.
SELECT id, source_id, uri, title, content_type, content_hash, size_bytes, metadata, created_at,
    updated_at
FROM documents
WHERE source_id = $1 AND uri = ANY ($2::text[]);

SELECT id, source_id, uri, title, content_type, content_hash, size_bytes, metadata, created_at,
    updated_at, content
FROM documents
WHERE id = ANY ($1::uuid[]);

-- One page of a source's documents without content, newest first, after the cursor ($2, $3);
-- see list_sources.sql for the cursor and limit conventions.
SELECT id, source_id, uri, title, content_type, content_hash, size_bytes, metadata, created_at,
    updated_at
FROM documents
WHERE source_id = $1
    AND (created_at, id) < ($2::timestamptz, $3::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $4;

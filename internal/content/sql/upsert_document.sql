-- Inserts a document or updates the one with the same (source_id, uri). The WHERE makes a save
-- with nothing new a no-op: no row comes back and updated_at keeps its value. created tells an
-- insert (no previous row version, xmax = 0) from an update.
INSERT INTO documents AS d (id, source_id, uri, title, content_type, content, content_hash,
    size_bytes, metadata, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now())
ON CONFLICT (source_id, uri) DO UPDATE
SET title = excluded.title,
    content_type = excluded.content_type,
    content = excluded.content,
    content_hash = excluded.content_hash,
    size_bytes = excluded.size_bytes,
    metadata = excluded.metadata,
    updated_at = now()
WHERE d.content_hash <> excluded.content_hash
    OR d.title <> excluded.title
    OR d.content_type <> excluded.content_type
    OR d.metadata <> excluded.metadata
RETURNING d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes,
    d.metadata, d.created_at, d.updated_at, (d.xmax = 0) AS created;

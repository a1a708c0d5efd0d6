-- Inserts a call's documents, or updates those with the same (source_id, uri), in one statement:
-- $1 the source, then one array entry per document, in step: $2 new ids, $3 uris, $4 titles,
-- $5 content types, $6 content hashes, $7 sizes, $8 metadata (JSON text), $9 contents (the
-- largest argument last, so that no argument after it grows the client's buffer). Rows are
-- written in uri order, so that concurrent upserts on one source lock them in the same order and
-- cannot deadlock. The WHERE makes a save with nothing new a no-op: no row comes back for it and
-- updated_at keeps its value. created tells an insert (no previous row version, xmax = 0) from
-- an update. The caller rejects a uri given twice (an upsert cannot touch one row twice).
INSERT INTO documents AS d (id, source_id, uri, title, content_type, content, content_hash,
    size_bytes, metadata, created_at, updated_at)
SELECT i.id, $1, i.uri, i.title, i.content_type, i.content, i.content_hash, i.size_bytes,
    i.metadata::jsonb, now(), now()
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[])
    AS i (id, uri, title, content_type, content_hash, size_bytes, metadata, content)
ORDER BY i.uri COLLATE "C"
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

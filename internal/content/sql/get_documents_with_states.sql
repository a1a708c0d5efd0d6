-- A group of documents with their index states (NULL when a document was never indexed), read
-- in one statement and so from one snapshot: a state that matches its document's content hash
-- was built from that content. $1 the ids, in the order the caller works through them; $2 a
-- budget of content bytes: the group ends with the document that reaches it (the first is
-- always read), so that a group of large documents does not hold them all in memory at once.
-- Each row carries its id's position in $1 (ord, the first when an id is listed twice) and the
-- bytes of the group up to and including it (upto), from which the caller tells how far the
-- group reached. Documents that do not exist have no row and take no bytes.
-- Each id is looked up by its key (LATERAL ... LIMIT 1, which the planner cannot turn into a
-- join): a plan made while the tables were small, or before their statistics caught up with a
-- large intake, would otherwise hash-join a sequential scan of each table, and every later group
-- would read all of both (docs/decisions/0029). Sizes are read first, content only for the
-- documents within the budget.
WITH ids AS (
    SELECT DISTINCT ON (u.id) u.id, u.ord
    FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, ord)
    ORDER BY u.id, u.ord
), sized AS (
    SELECT ids.id, ids.ord, z.size_bytes, sum(z.size_bytes) OVER (ORDER BY ids.ord) AS upto
    FROM ids
    CROSS JOIN LATERAL (SELECT d.size_bytes FROM documents d WHERE d.id = ids.id LIMIT 1) z
)
SELECT d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes, d.metadata,
    d.created_at, d.updated_at, d.content,
    s.content_hash, s.fingerprint, s.chunk_count, s.indexed_at,
    k.ord, k.upto
FROM sized k
CROSS JOIN LATERAL (
    SELECT d.id, d.source_id, d.uri, d.title, d.content_type, d.content_hash, d.size_bytes, d.metadata,
        d.created_at, d.updated_at, d.content
    FROM documents d WHERE d.id = k.id LIMIT 1
) d
LEFT JOIN LATERAL (
    SELECT s.content_hash, s.fingerprint, s.chunk_count, s.indexed_at
    FROM document_index_state s WHERE s.document_id = k.id LIMIT 1
) s ON true
WHERE k.upto - k.size_bytes < $2
ORDER BY k.ord;

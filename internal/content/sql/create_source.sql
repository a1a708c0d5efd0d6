-- Inserts a new source. $3 = '' stores NULL: an upload source.
INSERT INTO sources (id, name, url, crawler, crawl_options, status, created_at, updated_at)
VALUES ($1, $2, NULLIF($3::text, ''), $4, $5, $6, now(), now())
RETURNING id, name, coalesce(url, ''), crawler, crawl_options, status, error, created_at, updated_at,
    0::bigint AS document_count;

-- Inserts a new source. $3 = '' stores NULL: an upload source. A new source has no documents
-- and no crawl yet.
INSERT INTO sources (id, name, url, crawler, crawl_options, status, created_at, updated_at)
VALUES ($1, $2, NULLIF($3::text, ''), $4, $5, $6, now(), now())
RETURNING id, name, coalesce(url, ''), crawler, crawl_options, status, error, created_at, updated_at,
    0::bigint AS document_count, 0::bigint AS chunk_count, NULL::uuid AS last_crawl_job_id,
    NULL::timestamptz AS last_crawl_at;

-- One page of sources, newest first, after the cursor ($2, $3). The first page passes
-- ('infinity', the max uuid) so the keyset condition is always the same shape.
-- $1 = '' means every status. $4 is the page size plus one, to learn whether a next page exists.
-- The page is cut first, so the counts are computed for its rows only.
WITH page AS (
    SELECT * FROM sources s
    WHERE ($1::text = '' OR s.status = $1::text)
        AND (s.created_at, s.id) < ($2::timestamptz, $3::uuid)
    ORDER BY s.created_at DESC, s.id DESC
    LIMIT $4
)
SELECT s.id, s.name, coalesce(s.url, ''), s.crawler, s.crawl_options, s.status, s.error,
    s.created_at, s.updated_at, stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at
FROM page s
/*source_stats*/
ORDER BY s.created_at DESC, s.id DESC;

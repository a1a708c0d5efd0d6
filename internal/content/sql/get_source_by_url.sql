-- The web source with this start URL, if any.
SELECT s.id, s.name, coalesce(s.url, ''), s.crawler, s.crawl_options, s.status, s.error,
    s.created_at, s.updated_at, stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at
FROM sources s
/*source_stats*/
WHERE s.url = $1;

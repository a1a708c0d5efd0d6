-- The web source with this start URL, if any.
SELECT s.id, s.name, coalesce(s.url, ''), s.crawler, s.crawl_options, s.status, s.error,
    s.created_at, s.updated_at,
    (SELECT count(*) FROM documents d WHERE d.source_id = s.id) AS document_count
FROM sources s
WHERE s.url = $1;

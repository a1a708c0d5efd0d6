-- Crawl jobs pending or running, over all sources.
SELECT count(*) FROM jobs WHERE type = 'crawl' AND status IN ('pending', 'in_progress');

-- Jobs by type and status. Jobs are few next to documents (one per upload call or crawl), so a
-- scan of the table is cheap.
SELECT type, status, count(*) AS n
FROM jobs
GROUP BY type, status;

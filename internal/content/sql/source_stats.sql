-- Included by every query that returns sources, after FROM, where the source row is aliased s;
-- it adds the columns stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at.
-- Per source: index-only range scans of documents_source_created_idx and
-- document_index_state_source_idx (the chunks each document was last indexed into; deleting a
-- document deletes its row), and the first entry of jobs_source_finished_crawl_idx.
-- See docs/decisions/0019-source-counts-and-last-crawl.md.
LEFT JOIN LATERAL (
    SELECT (SELECT count(*) FROM documents d WHERE d.source_id = s.id) AS document_count,
        (SELECT coalesce(sum(x.chunk_count), 0) FROM document_index_state x WHERE x.source_id = s.id)::bigint AS chunk_count
) stats ON true
LEFT JOIN LATERAL (
    SELECT j.id AS job_id, j.finished_at
    FROM jobs j
    WHERE j.source_id = s.id AND j.type = 'crawl' AND j.finished_at IS NOT NULL
    ORDER BY j.finished_at DESC, j.id DESC
    LIMIT 1
) crawl ON true

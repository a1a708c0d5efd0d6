-- Included by every query that returns sources, after FROM, where the source row is aliased s;
-- it adds the columns stats.document_count, stats.chunk_count, crawl.job_id, crawl.finished_at.
-- Per source: one range scan of documents_source_created_idx with a primary-key probe into
-- document_index_state per document (the chunks each document was last indexed into; deleting
-- a document deletes its row), and the first entry of jobs_source_finished_crawl_idx.
-- See docs/decisions (source counts and last crawl).
LEFT JOIN LATERAL (
    SELECT count(*) AS document_count, coalesce(sum(x.chunk_count), 0)::bigint AS chunk_count
    FROM documents d
    LEFT JOIN document_index_state x ON x.document_id = d.id
    WHERE d.source_id = s.id
) stats ON true
LEFT JOIN LATERAL (
    SELECT j.id AS job_id, j.finished_at
    FROM jobs j
    WHERE j.source_id = s.id AND j.type = 'crawl' AND j.finished_at IS NOT NULL
    ORDER BY j.finished_at DESC, j.id DESC
    LIMIT 1
) crawl ON true

-- Last statement of a report transaction: the reports' jobs as the transaction leaves them. A
-- job's document_ids never change, so they are sent only for the jobs the caller does not know
-- yet (@known): for a big job they are most of the row (16 bytes a document, kept out of line
-- by TOAST past ~2 KB), and every report would read them again.
SELECT id, type, status, source_id,
    CASE WHEN id = ANY (@known::uuid[]) THEN NULL ELSE document_ids END AS document_ids,
    chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs
WHERE id = ANY (@job_ids::uuid[]);

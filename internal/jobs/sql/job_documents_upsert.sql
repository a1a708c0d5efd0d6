-- Write a batch of per-document results; a later report for a document replaces the earlier one.
INSERT INTO job_documents AS jd (job_id, document_id, status, chunk_count, attempts, last_error, error_kind, updated_at)
SELECT @job_id, r.document_id, r.status, r.chunk_count, r.attempts, r.last_error, r.error_kind, now()
FROM unnest(@document_ids::uuid[], @statuses::text[], @chunk_counts::bigint[], @attempts::int[],
            @last_errors::text[], @error_kinds::text[])
     AS r (document_id, status, chunk_count, attempts, last_error, error_kind)
ON CONFLICT (job_id, document_id) DO UPDATE
SET status      = EXCLUDED.status,
    chunk_count = EXCLUDED.chunk_count,
    attempts    = EXCLUDED.attempts,
    last_error  = EXCLUDED.last_error,
    error_kind  = EXCLUDED.error_kind,
    updated_at  = EXCLUDED.updated_at;

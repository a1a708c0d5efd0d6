-- A job's per-document results in document_id order; a zero @max_rows means no limit.
SELECT job_id, document_id, status, chunk_count, attempts, last_error, error_kind, updated_at
FROM job_documents
WHERE job_id = @job_id
  AND (@after::uuid IS NULL OR document_id > @after::uuid)
  AND (cardinality(@statuses::text[]) = 0 OR status = ANY (@statuses::text[]))
  AND (cardinality(@document_ids::uuid[]) = 0 OR document_id = ANY (@document_ids::uuid[]))
ORDER BY document_id
LIMIT NULLIF(@max_rows::int, 0);

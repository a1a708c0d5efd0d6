-- One pending result row per document of a new job.
INSERT INTO job_documents (job_id, document_id)
SELECT @job_id, d
FROM unnest(@document_ids::uuid[]) AS d;

-- One batch of a new processing job, queued and never enqueued yet.
INSERT INTO job_batches (id, job_id, seq, document_ids)
VALUES (@id, @job_id, @seq, @document_ids);

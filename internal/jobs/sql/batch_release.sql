-- The worker holding a batch gives it back unfinished (it is shutting down).
UPDATE job_batches
SET state = 'queued', worker = '', lease_until = NULL, updated_at = now()
WHERE id = @id AND worker = @worker AND state = 'running'
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

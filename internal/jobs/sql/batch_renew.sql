-- The worker holding a batch extends its lease. No row: the lease was lost (expired and taken by
-- another worker) or the batch is no longer running.
UPDATE job_batches
SET lease_until = now() + make_interval(secs => @lease_seconds), updated_at = now()
WHERE id = @id AND worker = @worker AND state = 'running'
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

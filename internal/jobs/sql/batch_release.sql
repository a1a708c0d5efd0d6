-- The worker holding a batch gives it back unfinished (it is shutting down).
-- The state is tested in a CASE so that the batch is found by its primary key only, never
-- through the partial index of open batches (see batch_mark_enqueued.sql).
UPDATE job_batches
SET state = 'queued', worker = '', lease_until = NULL, updated_at = now()
WHERE id = @id AND worker = @worker AND CASE state WHEN 'running' THEN true ELSE false END
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

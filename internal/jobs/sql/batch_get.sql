-- Read one batch.
SELECT id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at
FROM job_batches
WHERE id = @id;

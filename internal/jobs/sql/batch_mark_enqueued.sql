-- Record that a message for a queued batch was put on the queue. @enqueues is the number the
-- message was sent as; a stale writer (an older enqueue finishing late) changes nothing.
UPDATE job_batches
SET enqueues = @enqueues, queue_message_id = @queue_message_id, enqueued_at = now(), updated_at = now()
WHERE id = @id AND state = 'queued' AND enqueues < @enqueues
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

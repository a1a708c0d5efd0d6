-- Record that a message for a queued batch was put on the queue. @enqueues is the number the
-- message was sent as; a stale writer (an older enqueue finishing late) changes nothing. The
-- batch is found by its primary key only: the state is tested in a CASE, which the partial index
-- of open batches (job_batches_open_idx) cannot serve, so a generic plan cannot pick that index
-- and read every queued batch of a backlog to find this one (decision 0029).
UPDATE job_batches
SET enqueues = @enqueues, queue_message_id = @queue_message_id, enqueued_at = now(), updated_at = now()
WHERE id = @id AND CASE state WHEN 'queued' THEN true ELSE false END AND enqueues < @enqueues
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

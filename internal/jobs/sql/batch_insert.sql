-- One batch of a new processing job, queued. With @enqueues 1 its first message is already
-- named (@queue_message_id) and counts as sent now: the job's creator sends it right after the
-- commit (decision 0036). With 0 (no queue configured) it is never enqueued yet, and the
-- reconciler sends it.
INSERT INTO job_batches (id, job_id, seq, document_ids, enqueues, queue_message_id, enqueued_at)
VALUES (@id, @job_id, @seq, @document_ids, @enqueues, @queue_message_id,
    CASE WHEN @enqueues::int > 0 THEN now() END);

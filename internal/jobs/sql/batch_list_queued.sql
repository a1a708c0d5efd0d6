-- Queued batches of active jobs that were never enqueued, or last enqueued before @before:
-- candidates for a lost message.
SELECT b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
    b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at
FROM job_batches b
JOIN jobs j ON j.id = b.job_id
WHERE b.state = 'queued' AND j.status IN ('pending', 'in_progress')
  AND (b.enqueued_at IS NULL OR b.enqueued_at < @before)
ORDER BY b.created_at, b.seq
LIMIT @max;

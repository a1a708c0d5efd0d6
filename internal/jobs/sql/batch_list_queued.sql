-- Queued batches of active jobs last enqueued before @before, or never enqueued and created
-- before it: candidates for a lost message. A batch just created is given the same grace as one
-- just enqueued: its job's creator is sending its message at that moment, and a second message
-- from the reconciler would race the first (harmless for the work, but a duplicate delivery).
SELECT b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
    b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at
FROM job_batches b
JOIN jobs j ON j.id = b.job_id
WHERE b.state = 'queued' AND j.status IN ('pending', 'in_progress')
  AND coalesce(b.enqueued_at, b.created_at) < @before
ORDER BY b.created_at, b.seq
LIMIT @max;

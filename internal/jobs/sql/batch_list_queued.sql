-- Queued batches of active jobs left alone since before @before: candidates for a lost message.
-- A batch's updated_at is its last change, so this is its last enqueue, its creation (never
-- enqueued) or its hand-back by a worker, whichever came last. A batch just created, or just
-- handed back, is given the same grace as one just enqueued: its job's creator, or the worker,
-- is sending its message at that moment, and a second message from the reconciler would race
-- the first (harmless for the work, but a duplicate delivery). (A batch whose lease expired is
-- enqueued by the reconciler itself as it releases it.)
SELECT b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
    b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at
FROM job_batches b
JOIN jobs j ON j.id = b.job_id
WHERE b.state = 'queued' AND j.status IN ('pending', 'in_progress')
  AND b.updated_at < @before
ORDER BY b.created_at, b.seq
LIMIT @max;

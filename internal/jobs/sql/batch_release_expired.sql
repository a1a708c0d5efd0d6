-- Batches of active jobs whose lease ran out (the worker died or hung) go back to queued, so
-- they are enqueued again; the count of claims shows how often that happened.
UPDATE job_batches b
SET state = 'queued', worker = '', lease_until = NULL, updated_at = now()
WHERE b.state = 'running' AND b.lease_until < now()
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.status IN ('pending', 'in_progress'))
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

-- A worker claims a batch of an active job: a queued one, or a running one whose lease ran out
-- (its worker died). Anything else (done, held under a live lease, job finished) matches no row.
UPDATE job_batches b
SET state = 'running', worker = @worker, lease_until = now() + make_interval(secs => @lease_seconds),
    claims = claims + 1, updated_at = now()
WHERE b.id = @id
  AND (b.state = 'queued' OR (b.state = 'running' AND b.lease_until < now()))
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.status IN ('pending', 'in_progress'))
RETURNING id, job_id, seq, document_ids, state, enqueues, queue_message_id, enqueued_at, claims, worker,
    lease_until, created_at, updated_at, finished_at;

-- Workers claim batches of active jobs, one request per row of the arrays (ids distinct): a
-- queued batch, or a running one whose lease ran out (its worker died), becomes the requester's
-- under a lease of its length. Anything else (done, held under a live lease, job finished)
-- matches no row. The claimed batches are returned.
UPDATE job_batches b
SET state = 'running', worker = r.worker, lease_until = now() + make_interval(secs => r.lease_seconds),
    claims = b.claims + 1, updated_at = now()
FROM unnest(@ids::uuid[], @workers::text[], @lease_seconds::float8[]) AS r (id, worker, lease_seconds)
WHERE b.id = r.id
  AND (b.state = 'queued' OR (b.state = 'running' AND b.lease_until < now()))
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.status IN ('pending', 'in_progress'))
RETURNING b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
    b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at;

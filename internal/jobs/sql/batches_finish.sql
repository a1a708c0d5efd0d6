-- Workers holding batches mark them done, one request per row of the arrays (ids distinct).
-- Returns the batches it finished; a batch the requester does not hold matches no row.
UPDATE job_batches b
SET state = 'done', lease_until = NULL, finished_at = now(), updated_at = now()
FROM unnest(@ids::uuid[], @workers::text[]) AS r (id, worker)
WHERE b.id = r.id AND b.worker = r.worker AND b.state = 'running'
RETURNING b.id, b.job_id, b.seq, b.document_ids, b.state, b.enqueues, b.queue_message_id, b.enqueued_at,
    b.claims, b.worker, b.lease_until, b.created_at, b.updated_at, b.finished_at;

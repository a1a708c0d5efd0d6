-- After claims (batches_claim.sql, in the same transaction): start the pending jobs of the
-- batches the requesters now hold (pending -> in_progress, the state machine's only move into
-- in_progress), locking them in id order. Returns the ids of the jobs it started.
WITH held AS (
    SELECT b.job_id
    FROM job_batches b
    JOIN unnest(@ids::uuid[], @workers::text[]) AS r (id, worker) ON b.id = r.id AND b.worker = r.worker
    WHERE b.state = 'running'
), locked AS (
    SELECT j.id
    FROM jobs j
    WHERE j.id IN (SELECT job_id FROM held) AND j.status = 'pending'
    ORDER BY j.id
    FOR UPDATE
)
UPDATE jobs j
SET status = 'in_progress', started_at = now(), version = j.version + 1, updated_at = now()
FROM locked
WHERE j.id = locked.id AND j.status = 'pending'
RETURNING j.id;

-- After a claim (batch_claim.sql, in the same transaction): start the claimed batch's job if it
-- is still pending (pending -> in_progress, the state machine's only move into in_progress).
-- No row changed: the claim failed, or the job was started already.
UPDATE jobs
SET status = 'in_progress', started_at = now(), version = version + 1, updated_at = now()
WHERE id = (SELECT job_id FROM job_batches WHERE id = @id AND worker = @worker AND state = 'running')
  AND status = 'pending';

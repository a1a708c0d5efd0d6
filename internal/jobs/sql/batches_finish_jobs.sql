-- After batches were marked done (batches_finish.sql, in the same transaction, under the jobs'
-- locks): end each running job of the named batches that has no open batch any more. The
-- outcome is FinishJob's: FAILED when documents failed and none could be processed, else
-- COMPLETED (with error_count telling how many failed). Returns the ids of the jobs it ended; a
-- job still with open batches, not running (finished, or pending: FinishJob handles that), or
-- whose named batch is not done is left alone.
UPDATE jobs j
SET status      = CASE WHEN j.processed_count = 0 AND j.error_count > 0 THEN 'failed' ELSE 'completed' END,
    error       = CASE WHEN j.processed_count = 0 AND j.error_count > 0
                       THEN format('none of the %s documents could be processed; see the per-document errors', j.error_count)
                       ELSE j.error END,
    finished_at = now(),
    version     = j.version + 1,
    updated_at  = now()
WHERE j.id IN (SELECT job_id FROM job_batches WHERE id = ANY (@ids::uuid[]) AND state = 'done')
  AND j.status = 'in_progress'
  AND NOT EXISTS (SELECT 1 FROM job_batches o WHERE o.job_id = j.id AND o.state <> 'done')
RETURNING j.id;

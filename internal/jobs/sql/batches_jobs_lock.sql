-- Lock the jobs of the named batches in id order until the transaction ends. Finishing batches
-- takes these locks before it looks at the jobs' other batches, so of two batches of one job
-- finishing at once the second sees the first done and finishes the job. Only jobs with a batch
-- outside the named ones need it: this transaction already holds every named batch
-- (batches_lock.sql), so no other transaction can finish a batch of a job whose batches are all
-- named here (a one-batch job, the common case for small jobs), and locking it would only cost a
-- write.
SELECT 1
FROM jobs j
WHERE j.id IN (SELECT job_id FROM job_batches WHERE id = ANY (@ids::uuid[]))
  AND EXISTS (SELECT 1 FROM job_batches o WHERE o.job_id = j.id AND o.id <> ALL (@ids::uuid[]))
ORDER BY j.id
FOR UPDATE;

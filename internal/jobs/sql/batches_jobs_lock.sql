-- Lock the jobs of the named batches in id order until the transaction ends. Finishing batches
-- takes these locks before it looks at the jobs' other batches, so of two batches of one job
-- finishing at once the second sees the first done and finishes the job.
SELECT 1
FROM jobs
WHERE id IN (SELECT job_id FROM job_batches WHERE id = ANY (@ids::uuid[]))
ORDER BY id
FOR UPDATE;

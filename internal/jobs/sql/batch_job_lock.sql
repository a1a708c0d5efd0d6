-- Lock the job of a batch until the transaction ends. Finishing a batch takes it before it
-- looks at the job's other batches, so of two batches finishing at once the second sees the
-- first done and finishes the job.
SELECT 1 FROM jobs WHERE id = (SELECT job_id FROM job_batches WHERE id = @id) FOR UPDATE;

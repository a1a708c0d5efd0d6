-- Lock a batch, then (batch_job_lock.sql) its job: the order every write that touches both
-- takes (a claim updates the batch, then starts the job), so two of them never deadlock.
SELECT 1 FROM job_batches WHERE id = @id FOR UPDATE;

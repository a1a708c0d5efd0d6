-- How many batches of a job are not done yet.
SELECT count(*) FROM job_batches WHERE job_id = @job_id AND state <> 'done';

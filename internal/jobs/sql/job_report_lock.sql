-- First statement of a report transaction: lock the jobs the reports are about, in id order (so
-- two such transactions cannot deadlock), before job_report_record.sql takes its snapshot. In
-- READ COMMITTED each statement sees what was committed when it started, so the record
-- statement then reads the latest per-document rows: every writer of a job's results holds
-- the job's row lock. NO KEY UPDATE: rows of other tables referencing the job can still be
-- inserted meanwhile.
SELECT id
FROM jobs
WHERE id = ANY (@job_ids::uuid[])
ORDER BY id
FOR NO KEY UPDATE;

-- Lock the named batches in id order and say which job each belongs to: the first statement of
-- a group of claims and finishes (before batches_claim_start.sql and batches_finish_end.sql), so
-- that two groups that share batches (a message delivered twice) take their locks in the same
-- order and never deadlock. Batches that do not exist return no row.
SELECT id, job_id
FROM job_batches
WHERE id = ANY (@ids::uuid[])
ORDER BY id
FOR UPDATE;

-- Batches of active jobs waiting or running: the processing backlog. (Batches of finished jobs
-- keep their last state but are never worked on, so they do not count.)
SELECT count(*)
FROM job_batches b
JOIN jobs j ON j.id = b.job_id
WHERE b.state IN ('queued', 'running') AND j.status IN ('pending', 'in_progress');

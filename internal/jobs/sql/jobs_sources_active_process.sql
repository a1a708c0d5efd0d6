-- Which of the sources have a pending or running processing job
-- (jobs_active_process_by_source_idx).
SELECT DISTINCT source_id
FROM jobs
WHERE source_id = ANY (@source_ids::uuid[])
  AND type = 'process'
  AND status IN ('pending', 'in_progress');

-- Which of the sources have a pending or running processing job: one probe of
-- jobs_active_process_by_source_idx per source, which stops at the first live entry. (Reading
-- all of a source's active jobs, as SELECT DISTINCT did, cost a heap visit per job: a source
-- with a thousand jobs in flight paid a thousand for each group of job ends.)
SELECT s.id
FROM unnest(@source_ids::uuid[]) AS s (id)
CROSS JOIN LATERAL (
    SELECT 1
    FROM jobs j
    WHERE j.source_id = s.id
      AND j.type = 'process'
      AND j.status IN ('pending', 'in_progress')
    LIMIT 1
) AS active;

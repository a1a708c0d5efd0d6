-- Whether the source has a pending or running processing job (jobs_active_process_by_source_idx).
SELECT EXISTS (
    SELECT 1
    FROM jobs
    WHERE source_id = @source_id
      AND type = 'process'
      AND status IN ('pending', 'in_progress')
);

-- Read one job's status only (a worker's check for a cancel between documents).
SELECT status
FROM jobs
WHERE id = @id;

-- +goose NO TRANSACTION
-- +goose Up
-- Whether a source still has a pending or running processing job, asked every time one of its
-- processing jobs ends (the source is settled only when none is left): one probe of this small
-- index. Without it that question read the jobs list query, which Postgres planned as a scan of
-- the whole table (90-120 ms at 10,000 jobs). CONCURRENTLY: built without blocking job writes.
-- An earlier attempt that failed midway leaves an invalid index of this name: drop it first.
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_process_by_source_idx;
CREATE INDEX CONCURRENTLY jobs_active_process_by_source_idx
    ON jobs (source_id)
    WHERE type = 'process' AND status IN ('pending', 'in_progress');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_process_by_source_idx;

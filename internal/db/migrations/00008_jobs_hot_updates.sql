-- +goose NO TRANSACTION
-- +goose Up
-- Let the writes that change neither a job's status nor its ids be HOT updates (no new index
-- entries): the enqueue mark (queue_message_id, version, updated_at) and every worker progress
-- report (counts, version, updated_at). jobs_active_idx held (status, updated_at), so each of
-- those writes added an entry to every index of the table (seven). Its queries only need the
-- active jobs in creation order (the reconciler's timed-out and unfinished jobs; stale crawls use
-- jobs_one_active_crawl), which this index gives without updated_at.
-- And jobs_retry_of_key indexed every job's NULL retry_of (an entry per row version of every
-- job that is not a retry): it is unique over the non-NULL values only, as before, and stays the
-- index RetryJob's unique violation names.
-- CONCURRENTLY: built and dropped without blocking job writes. An earlier attempt that failed
-- midway may have left an invalid index of a new name: dropped first.
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_created_idx;
CREATE INDEX CONCURRENTLY jobs_active_created_idx ON jobs (created_at) WHERE status IN ('pending', 'in_progress');
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_idx;
DROP INDEX CONCURRENTLY IF EXISTS jobs_retry_of_partial_key;
CREATE UNIQUE INDEX CONCURRENTLY jobs_retry_of_partial_key ON jobs (retry_of) WHERE retry_of IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS jobs_retry_of_key;
ALTER INDEX jobs_retry_of_partial_key RENAME TO jobs_retry_of_key;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS jobs_retry_of_full_key;
CREATE UNIQUE INDEX CONCURRENTLY jobs_retry_of_full_key ON jobs (retry_of);
DROP INDEX CONCURRENTLY IF EXISTS jobs_retry_of_key;
ALTER INDEX jobs_retry_of_full_key RENAME TO jobs_retry_of_key;
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_idx;
CREATE INDEX CONCURRENTLY jobs_active_idx ON jobs (status, updated_at) WHERE status IN ('pending', 'in_progress');
DROP INDEX CONCURRENTLY IF EXISTS jobs_active_created_idx;

-- +goose NO TRANSACTION
-- +goose Up
-- A source's last finished crawl, read with every GetSource/ListSources row: the first entry of
-- this index for the source. Without it the lookup walks all the source's jobs, and an upload
-- source can have many processing jobs and no crawl. CONCURRENTLY: on a large table the index
-- is built without blocking job writes.
-- An earlier attempt that failed midway leaves an invalid index of this name: drop it first.
DROP INDEX CONCURRENTLY IF EXISTS jobs_source_finished_crawl_idx;
CREATE INDEX CONCURRENTLY jobs_source_finished_crawl_idx
    ON jobs (source_id, finished_at DESC, id DESC)
    WHERE type = 'crawl' AND finished_at IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS jobs_source_finished_crawl_idx;

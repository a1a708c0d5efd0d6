-- +goose NO TRANSACTION
-- +goose Up
-- Results recorded recently, for SystemService.GetStats's throughput (documents per second over
-- the last minute): without it that count would read every job_documents row. Pending rows stay
-- out of it, so creating a job's result rows does not grow it. CONCURRENTLY: on a large table the
-- index is built without blocking the workers' writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS job_documents_finished_idx ON job_documents (updated_at)
    WHERE status <> 'pending';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS job_documents_finished_idx;

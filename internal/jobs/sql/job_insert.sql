-- Insert a new job at version 1; created_at and updated_at default to now(). @queue_message_id
-- names the first message of its first batch (empty when none will be sent at once).
INSERT INTO jobs (id, type, status, source_id, document_ids, retry_of, timeout_seconds, queue_message_id)
VALUES (@id, @type, @status, @source_id, @document_ids::uuid[], @retry_of, @timeout_seconds, @queue_message_id)
RETURNING id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id;

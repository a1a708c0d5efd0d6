-- A page of jobs in (created_at DESC, id DESC) order; empty filters match everything.
SELECT id, type, status, source_id, document_ids, chunk_count, processed_count, error_count,
    queue_message_id, error, retry_of, version, timeout_seconds, created_at, updated_at,
    started_at, finished_at, pages_discovered, pages_fetched, pages_failed, external_id
FROM jobs
WHERE (@source_id::uuid IS NULL OR source_id = @source_id::uuid)
  AND (@type::text = '' OR type = @type::text)
  AND (@status::text = '' OR status = @status::text)
  AND (NOT @has_cursor::bool OR (created_at, id) < (@cursor_created_at::timestamptz, @cursor_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT @max_rows::int;

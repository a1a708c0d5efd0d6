-- Moves a source to status $2 with error $3 if its current status is one of $4 (the statuses
-- that may move to $2), like update_source_status.sql but without reading the source back, and
-- writing nothing when the source already has that status and error: processing hooks call it
-- for every job of a source, and a write there would queue each job behind the last one's commit
-- on the source's row. Returns the status and error before the statement, and whether it wrote.
WITH cur AS (
    SELECT status, error FROM sources WHERE id = $1
), moved AS (
    UPDATE sources
    SET status = $2::text, error = $3::text, updated_at = now()
    WHERE id = $1 AND status = ANY ($4::text[]) AND (status <> $2::text OR error <> $3::text)
    RETURNING 1
)
SELECT cur.status, cur.error, EXISTS (SELECT 1 FROM moved)
FROM cur;

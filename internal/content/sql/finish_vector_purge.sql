-- A purge attempt's outcome: success removes the row, failure counts and records it.
WITH done AS (
    DELETE FROM vector_purges WHERE source_id = $1 AND $2::text = ''
)
UPDATE vector_purges SET attempts = attempts + 1, last_error = $2
WHERE source_id = $1 AND $2::text <> '';

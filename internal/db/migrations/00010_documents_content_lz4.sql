-- +goose Up
-- Documents' content is compressed with lz4 instead of Postgres's default pglz when the server
-- has lz4 (Postgres 14+ built with it, as the official and Debian packages are). Content past
-- ~2 KB is compressed when a document is written and decompressed whenever a worker reads it;
-- lz4 costs a fraction of pglz's CPU for both (end to end, 2 workers: +8-10% documents/s on the
-- 2-core benchmark machine, decision 0027). Only values written from now on use it; older rows
-- keep pglz and read as before. Changing a column's compression rewrites nothing, but takes an
-- exclusive lock on documents for a moment: it waits at most 10 s for running statements (a
-- long scan of documents), then fails, and the migration can simply be run again.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        PERFORM set_config('lock_timeout', '10s', true);
        ALTER TABLE documents ALTER COLUMN content SET COMPRESSION lz4;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE documents ALTER COLUMN content SET COMPRESSION default;

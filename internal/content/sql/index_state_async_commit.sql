-- Sent with an index state write, in its implicit transaction: commit it without waiting for the
-- WAL to reach disk. An index state lost in a Postgres crash only makes its document be indexed
-- again (under the same chunk ids), and the next synchronous commit on the server (a worker's
-- report of that document) flushes it too, since the WAL is written in order.
SELECT set_config('synchronous_commit', 'off', true);

-- Let the transaction this statement opens commit without waiting for its WAL to reach disk
-- (docs/decisions, "asynchronous commit of claims"). Only for writes whose loss in a Postgres
-- crash is repaired by the reconciler: an enqueue mark. The next synchronous commit on the server
-- (a finish, a report) flushes them too, since the WAL is written in order. Its statements find
-- their rows by key, so sequential scans are ruled out, as in keyed_writes.sql.
SELECT set_config('synchronous_commit', 'off', true), set_config('enable_seqscan', 'off', true);

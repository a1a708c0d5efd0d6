-- Let the transaction this statement opens commit without waiting for its WAL to reach disk
-- (docs/decisions, "asynchronous commit of claims"). Only for writes whose loss in a Postgres
-- crash is repaired by the reconciler: a claim or an enqueue mark. The next synchronous commit
-- on the server (a finish, a report) flushes them too, since the WAL is written in order.
SELECT set_config('synchronous_commit', 'off', true);

-- First statement of a group of claims and finishes that runs in a transaction of its own (the
-- pipeline's implicit one): settings local to it. Generic plans: the group's statements are the
-- same every time but for the length of their id arrays, and Postgres otherwise planned the
-- lock statements afresh for every group, which cost more than running them (decision 0027).
-- The probe of the sources of the jobs a group ended (jobs_sources_active_process.sql) starts
-- with it too, for the same reason.
-- A group that holds only claims also commits asynchronously: a claim lost in a Postgres crash
-- costs time, never correctness, and the next synchronous commit flushes it too, since the WAL
-- is written in order (decision 0016); one with a finish does not (decision 0028). Sequential scans are ruled out, so that a
-- generic plan made while the tables were small cannot scan them whole as they grow (decision
-- 0029).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true),
       CASE WHEN @async_commit::boolean THEN set_config('synchronous_commit', 'off', true) END;

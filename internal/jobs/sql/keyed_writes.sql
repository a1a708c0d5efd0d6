-- First statement of a pipeline whose statements find their rows by key only (JobCreate's
-- inserts, whose foreign-key checks look up the job, its documents and its source): sequential
-- scans ruled out for the pipeline's own transaction. Postgres settles on a generic plan after a
-- statement's fifth run on a connection, and on a foreign-key check's too, and keeps it until the
-- table is next analyzed; made while a table was small (a new installation, a table just
-- emptied), that plan scans the table whole, and every job created in a burst then read all the
-- jobs before it (decision 0029). With sequential scans ruled out, the plans kept find the rows
-- through their keys' indexes whatever the table held when they were made.
SELECT set_config('enable_seqscan', 'off', true);

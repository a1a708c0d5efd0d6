-- Sent before a worker's group statements (get_documents_with_states.sql, put_index_states.sql),
-- in the same round trip and implicit transaction: sequential scans ruled out for that
-- transaction. Each statement looks its documents up one by one by key (LATERAL ... LIMIT 1),
-- but a generic plan made while the tables were analyzed empty (a source just deleted, the next
-- intake's first minute) still scans each table inside those lookups: O(table) a document until
-- the next analyze. The end-to-end benchmark, with the tables vacuumed between runs, ran 25-40%
-- slower. With scans ruled out the plan uses the keys' indexes whatever the statistics said.
SELECT set_config('enable_seqscan', 'off', true);

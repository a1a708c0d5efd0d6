package jobs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

// TestKeyedWritesFindRowsByPrimaryKey: the foreign-key checks of the inserts that create every
// job find the job through its primary key, under the settings their pipeline runs them with
// (keyed_writes.sql: sequential scans off). The plan checked is the generic one Postgres
// settles on after a statement's fifth run on a connection, made here while the tables are
// small; a service keeps it until the tables are next analyzed. (Until decision 0036 the test
// also held the enqueue mark's plans, which scanned the whole backlog before decision 0029; the
// mark is no longer on the creation's path.)
func TestKeyedWritesFindRowsByPrimaryKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.New(t)
	// Analyzed while empty (a new installation's first autovacuum, a table just emptied), then
	// a few rows: the planner sees small tables.
	_, err := pool.Exec(ctx, `
		ANALYZE jobs, job_batches;
		INSERT INTO sources (id, name, status) VALUES ('00000000-0000-0000-0000-000000000001', 'plans', 'ready');
		INSERT INTO jobs (id, type, status, source_id)
		SELECT gen_random_uuid(), 'process', 'pending', '00000000-0000-0000-0000-000000000001'
		FROM generate_series(1, 20);
		INSERT INTO job_batches (id, job_id, seq, document_ids)
		SELECT gen_random_uuid(), id, 0, '{}' FROM jobs`)
	require.NoError(t, err)

	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
	require.NoError(t, err)
	// JobCreate's inserts run after keyed_writes.sql: their foreign-key checks, which Postgres
	// plans as below and keeps the same way, find the job through its key.
	tx, err := conn.Begin(ctx) // the settings are local to a transaction, as to the pipeline's
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // a rollback after a failure
	_, err = tx.Exec(ctx, dispatchQueries.keyedWrites)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "PREPARE fk_check AS SELECT 1 FROM ONLY jobs x WHERE id = $1 FOR KEY SHARE OF x")
	require.NoError(t, err)
	got, plan := dbtest.PlanReads(t, tx, "EXECUTE fk_check(gen_random_uuid())")
	require.Equal(t, []string{"jobs_pkey"}, got, "a foreign-key check of a job:\n%s", plan)
}

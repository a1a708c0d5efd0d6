package jobs

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

// TestKeyedWritesFindRowsByPrimaryKey: the statements that write one batch or one job by its id
// on the path of every created job find it through its primary key, under the settings their
// pipeline runs them with (batch_async_commit.sql: sequential scans off). The plan checked is
// the generic one Postgres settles on after a statement's fifth run on a connection, made here
// while the tables are small; a service keeps it until the tables are next analyzed. Before
// decision 0029 the enqueue mark's generic plan scanned the table, or, with sequential scans
// off, the partial index of open batches: either way it read the whole backlog to find one batch.
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
	tx, err := conn.Begin(ctx) // the settings are local to a transaction, as to the pipeline's
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // a rollback after a failure
	_, err = tx.Exec(ctx, dispatchQueries.batchAsyncCommit)
	require.NoError(t, err)
	for _, q := range []struct {
		name string
		pq   positionalQuery
		args map[string]string // SQL for each named argument: any value, a generic plan does not look
		key  string
	}{
		{"batch_mark_enqueued", dispatchQueries.batchMarkEnqueued, map[string]string{"enqueues": "1", "queue_message_id": "'m'", "id": "gen_random_uuid()"}, "job_batches_pkey"},
		{"job_set_queue_message_id", dispatchQueries.jobSetQueueMessageID, map[string]string{"queue_message_id": "'m'", "id": "gen_random_uuid()", "statuses": "'{pending}'"}, "jobs_pkey"},
	} {
		args := make([]string, len(q.pq.names))
		for i, n := range q.pq.names {
			args[i] = q.args[n]
		}
		_, err = tx.Exec(ctx, "PREPARE "+q.name+" AS "+q.pq.sql)
		require.NoError(t, err, q.name)
		if got, plan := dbtest.PlanReads(t, tx, "EXECUTE "+q.name+"("+strings.Join(args, ", ")+")"); !slices.Equal(got, []string{q.key}) {
			t.Errorf("%s: the generic plan reads %v, want only %s:\n%s", q.name, got, q.key, plan)
		}
	}
	require.NoError(t, tx.Rollback(ctx))

	// JobCreate's inserts run after keyed_writes.sql: their foreign-key checks, which Postgres
	// plans as below and keeps the same way, find the job through its key too.
	tx, err = conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // a rollback after a failure
	_, err = tx.Exec(ctx, dispatchQueries.keyedWrites)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "PREPARE fk_check AS SELECT 1 FROM ONLY jobs x WHERE id = $1 FOR KEY SHARE OF x")
	require.NoError(t, err)
	got, plan := dbtest.PlanReads(t, tx, "EXECUTE fk_check(gen_random_uuid())")
	require.Equal(t, []string{"jobs_pkey"}, got, "a foreign-key check of a job:\n%s", plan)
}

package jobs

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

// TestEveryQueryLoaded: a field of queries left out of its initialiser would be an empty query,
// which pgx runs happily and which matches nothing.
func TestEveryQueryLoaded(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(queries)
	for i := range v.NumField() {
		require.NotEmpty(t, v.Field(i).String(), "queries.%s", v.Type().Field(i).Name)
	}
}

// TestGroupSettings: the first statement of a group of claims and finishes gives the group's
// own transaction generic plans made without sequential scans, and a group of claims only an
// asynchronous commit; the settings end with that transaction. In a caller's transaction nothing is queued: its settings are the
// caller's.
func TestGroupSettings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.New(t)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	s := &PgStore{db: conn} // one connection, to see that the settings end with the transaction
	const read = "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan'), current_setting('synchronous_commit')"
	for _, async := range []bool{true, false} {
		b := &pgx.Batch{}
		require.Equal(t, 1, s.queueGroupSettings(b, async))
		b.Queue(read)
		var plans, seqscan, commit string
		err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return err
			}
			return br.QueryRow().Scan(&plans, &seqscan, &commit)
		})
		require.NoError(t, err)
		require.Equal(t, []string{"force_generic_plan", "off"}, []string{plans, seqscan})
		require.Equal(t, map[bool]string{true: "off", false: "on"}[async], commit)

		require.NoError(t, conn.QueryRow(ctx, read).Scan(&plans, &seqscan, &commit))
		require.Equal(t, []string{"auto", "on", "on"}, []string{plans, seqscan, commit}, "the settings ended with the group's transaction")
	}
	err = s.InTx(ctx, func(tx Store) error {
		require.Equal(t, 0, tx.(*PgStore).queueGroupSettings(&pgx.Batch{}, true))
		return nil
	})
	require.NoError(t, err)
}

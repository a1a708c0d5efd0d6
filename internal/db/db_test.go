package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t) // already migrated up

	st, err := db.Status(ctx, pool)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, s := range st {
		require.True(t, s.Applied, "migration %d applied", s.Version)
	}

	n, err := db.MigrateUp(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n, "a second up applies nothing")

	for range st {
		require.NoError(t, db.MigrateDown(ctx, pool))
	}
	require.ErrorIs(t, db.MigrateDown(ctx, pool), db.ErrNoMigration)

	var tables int
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'jobs'`).Scan(&tables))
	require.Zero(t, tables)

	n, err = db.MigrateUp(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, len(st), n)
}

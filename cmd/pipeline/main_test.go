package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBadSettingNamesIt(t *testing.T) {
	t.Parallel()
	_, err := run(t, "serve", "--log-level=loud")
	require.ErrorContains(t, err, "PIPELINE_LOG_LEVEL")
	_, err = run(t, "dev", "--grpc-addr=nope")
	require.ErrorContains(t, err, "PIPELINE_GRPC_ADDR")
	_, err = run(t, "worker", "--batch-size=0")
	require.ErrorContains(t, err, "PIPELINE_BATCH_SIZE")
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	_, url := dbtest.NewWithURL(t) // migrated already

	out, err := run(t, "migrate", "status", "--database-url", url)
	require.NoError(t, err)
	require.Contains(t, out, "00001_init.sql")
	require.Contains(t, out, "applied")

	out, err = run(t, "migrate", "down", "--database-url", url)
	require.NoError(t, err)
	require.Contains(t, out, "rolled back 1 migration")

	out, err = run(t, "migrate", "status", "--database-url", url)
	require.NoError(t, err)
	require.Contains(t, out, "pending")

	out, err = run(t, "migrate", "up", "--database-url", url)
	require.NoError(t, err)
	require.Contains(t, out, "applied 1 migration(s)")
}

func TestUnreachableDatabaseNamesTheSetting(t *testing.T) {
	t.Parallel()
	_, err := run(t, "migrate", "status", "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, "PIPELINE_DATABASE_URL")
}

func TestWorkerRefusesTheEmbeddedStore(t *testing.T) {
	t.Parallel()
	_, url := dbtest.NewWithURL(t)
	_, err := run(t, "worker", "--database-url", url, "--vector-store", "embedded")
	require.ErrorContains(t, err, "PIPELINE_VECTOR_STORE=embedded")
	require.ErrorContains(t, err, "pipeline dev")
}

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
	_, err := run(t, "--log-level=loud", "version")
	require.ErrorContains(t, err, "PIPELINE_LOG_LEVEL")
	_, err = run(t, "--grpc-addr=nope", "serve")
	require.ErrorContains(t, err, "PIPELINE_GRPC_ADDR")
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	_, url := dbtest.NewWithURL(t) // migrated already

	out, err := run(t, "--database-url", url, "migrate", "status")
	require.NoError(t, err)
	require.Contains(t, out, "00001_init.sql")
	require.Contains(t, out, "applied")

	out, err = run(t, "--database-url", url, "migrate", "down")
	require.NoError(t, err)
	require.Contains(t, out, "rolled back 1 migration")

	out, err = run(t, "--database-url", url, "migrate", "status")
	require.NoError(t, err)
	require.Contains(t, out, "pending")

	out, err = run(t, "--database-url", url, "migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "applied 1 migration(s)")
}

func TestUnreachableDatabaseNamesTheSetting(t *testing.T) {
	t.Parallel()
	_, err := run(t, "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", "migrate", "status")
	require.ErrorContains(t, err, "PIPELINE_DATABASE_URL")
}

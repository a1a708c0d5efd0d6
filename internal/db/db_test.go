package db_test

import (
	"context"
	"strings"
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

// TestDocumentContentCompression: documents' content is compressed with lz4 where the server
// has it (migration 00010), and a large document is stored compressed and reads back whole.
func TestDocumentContentCompression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	var hasLZ4 bool
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals))`).Scan(&hasLZ4))
	var method string
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'documents'::regclass AND attname = 'content'`).Scan(&method))
	if !hasLZ4 {
		t.Skip("this Postgres has no lz4")
	}
	require.Equal(t, "l", method)

	content := strings.Repeat("the same words again and again ", 1000)
	var srcID string
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO sources (id, name, status) VALUES (gen_random_uuid(), 's', 'ready') RETURNING id`).Scan(&srcID))
	_, err := pool.Exec(ctx, `INSERT INTO documents (id, source_id, uri, title, content_type, content, content_hash, size_bytes)
		VALUES (gen_random_uuid(), $1, 'a.md', 'a', 'text/markdown', $2, 'h', length($2))`, srcID, content)
	require.NoError(t, err)
	var got, stored string
	require.NoError(t, pool.QueryRow(ctx, `SELECT content, pg_column_compression(content) FROM documents`).Scan(&got, &stored))
	require.Equal(t, content, got)
	require.Equal(t, "lz4", stored)
}

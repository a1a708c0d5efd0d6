package db_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
)

// A Texts goes to Postgres as the text[] its strings make, NULL for nil as a []string would.
func TestTextsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	for _, in := range []db.Texts{{"a", "", "ünïcödé", strings.Repeat("x", 70_000)}, {}, nil} {
		var out []string
		var isNull bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT $1::text[], $1::text[] IS NULL", in).Scan(&out, &isNull))
		require.Equal(t, in == nil, isNull)
		require.Equal(t, len(in), len(out))
		for i := range in {
			require.Equal(t, in[i], out[i], "element %d", i)
		}
	}
}

// On a pool's connection, a large Texts is encoded into a buffer grown once to its size, where
// the same strings as a []string grow it a quarter at a time, copying them over and over. Not
// parallel: it counts the process's allocations.
func TestTextsEncodeGrowsTheBufferOnce(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.New(t)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	m := conn.Conn().TypeMap()

	contents := make([]string, 100)
	size := 0
	for i := range contents {
		contents[i] = strings.Repeat("word ", 1000)
		size += len(contents[i])
	}
	// allocated is the bytes one encoding allocates, from a buffer as small as the one pgx
	// starts every statement's arguments with.
	allocated := func(value any) float64 {
		const runs = 10
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			if _, err := m.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, value, make([]byte, 0, 256)); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / runs / float64(size)
	}
	plain, sized := allocated(contents), allocated(db.Texts(contents))
	t.Logf("allocated per byte: []string %.2f, Texts %.2f", plain, sized)
	require.Greater(t, plain, 2.0, "a []string allocates its bytes several times over")
	require.Less(t, sized, 1.1, "a Texts allocates them about once ([]string: %.2f times)", plain)
}

// Where the plan is not registered (a pool opened without OpenConfig), a Texts is encoded as
// the []string it is.
func TestTextsWithoutTheRegisteredPlan(t *testing.T) {
	t.Parallel()
	m := pgtype.NewMap()
	in := []string{"a", "", "ünïcödé"}
	want, err := m.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, in, nil)
	require.NoError(t, err)
	got, err := m.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, db.Texts(in), nil)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

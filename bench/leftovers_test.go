package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The sweep's names are those a run gives its schemas, and nothing else that starts alike.
func TestRunNamesMatchWhatRunsCreate(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"bench_0a1b2c3d4e5f", "bench_river_1a2b3c4d"} {
		require.True(t, runNames.schema.MatchString(name), name)
	}
	for _, name := range []string{"bench_", "bench_river_", "bench_0a1b_x", "benchmark", "bench_XYZ", "test_0a1b"} {
		require.False(t, runNames.schema.MatchString(name), name)
	}
}

// leftovers is what a killed run with its own names would have left: a schema with a table,
// keys under its prefix and taskq's, an asynq queue's key and its entry in asynq's queue set.
type leftovers struct {
	names  leftoverNames
	schema string
	keys   []string
	asynq  string
	queue  string
	rdb    *redis.Client
	adb    *redis.Client
	pg     *pgx.Conn
}

func leaveLeftovers(t *testing.T) *leftovers {
	t.Helper()
	ctx := t.Context()
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	l := &leftovers{
		names: leftoverNames{
			schemaLike: `bench\_` + id,
			schema:     regexp.MustCompile(`^bench_` + id + `$`),
			keys:       []string{"bench:" + id + ":*", "taskq:{bench:" + id + ":*"},
			asynqKeys:  "asynq:{bench:" + id + ":*",
			asynqQueue: "bench:" + id + ":",
		},
		schema: "bench_" + id,
		keys:   []string{"bench:" + id + ":status", "taskq:{bench:" + id + ":processing}:stream"},
		asynq:  "asynq:{bench:" + id + ":q}:pending",
		queue:  "bench:" + id + ":q",
	}
	var err error
	l.pg, err = pgx.Connect(ctx, benchDatabaseURL())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = l.pg.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+l.schema+" CASCADE")
		_ = l.pg.Close(context.Background())
	})
	_, err = l.pg.Exec(ctx, "CREATE SCHEMA "+l.schema+"; CREATE TABLE "+l.schema+".jobs (id int)")
	require.NoError(t, err)

	opt, err := redis.ParseURL(benchRedisURL())
	require.NoError(t, err)
	l.rdb = redis.NewClient(opt)
	opt.DB = dispatchAsynqDB
	l.adb = redis.NewClient(opt)
	t.Cleanup(func() {
		ctx := context.Background()
		_ = l.rdb.Del(ctx, l.keys...).Err()
		_ = l.adb.Del(ctx, l.asynq).Err()
		_ = l.adb.SRem(ctx, asynqQueues, l.queue).Err()
		_ = l.rdb.Close()
		_ = l.adb.Close()
	})
	for _, k := range l.keys {
		require.NoError(t, l.rdb.Set(ctx, k, "x", 0).Err())
	}
	require.NoError(t, l.adb.Set(ctx, l.asynq, "x", 0).Err())
	require.NoError(t, l.adb.SAdd(ctx, asynqQueues, l.queue).Err())
	return l
}

// present reports which of the leftovers are still there.
func (l *leftovers) present(t *testing.T) (schema bool, keys, asynq int64, queue bool) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, l.pg.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", l.schema).Scan(&schema))
	keys, err := l.rdb.Exists(ctx, l.keys...).Result()
	require.NoError(t, err)
	asynq, err = l.adb.Exists(ctx, l.asynq).Result()
	require.NoError(t, err)
	queue, err = l.adb.SIsMember(ctx, asynqQueues, l.queue).Result()
	require.NoError(t, err)
	return schema, keys, asynq, queue
}

func randomLockKey() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:]) >> 1)
}

// A run that finds no other alive removes what dead runs left, then holds its share of the
// lock, which keeps the next run from sweeping while it lives.
func TestRunAloneSweepsLeftovers(t *testing.T) {
	t.Parallel()
	l := leaveLeftovers(t)
	key := randomLockKey()
	var logged []string
	conn, err := takeRunLock(t.Context(), key, l.names, func(f string, _ ...any) { logged = append(logged, f) })
	require.NoError(t, err)
	defer conn.Close(context.Background())

	schema, keys, asynq, queue := l.present(t)
	require.False(t, schema, "schema")
	require.Zero(t, keys, "keys")
	require.Zero(t, asynq, "asynq's keys")
	require.False(t, queue, "asynq's queue set")
	require.NotEmpty(t, logged)

	var alone bool
	require.NoError(t, l.pg.QueryRow(t.Context(), "SELECT pg_try_advisory_lock($1)", key).Scan(&alone))
	require.False(t, alone, "the run holds its share of the lock")
}

// A run that starts while another is alive leaves everything alone: it may be that run's.
func TestRunBesideAnotherSweepsNothing(t *testing.T) {
	t.Parallel()
	l := leaveLeftovers(t)
	key := randomLockKey()
	_, err := l.pg.Exec(t.Context(), "SELECT pg_advisory_lock_shared($1)", key) // the run alive
	require.NoError(t, err)

	conn, err := takeRunLock(t.Context(), key, l.names, t.Logf)
	require.NoError(t, err)
	defer conn.Close(context.Background())

	schema, keys, asynq, queue := l.present(t)
	require.True(t, schema, "schema")
	require.Equal(t, int64(len(l.keys)), keys, "keys")
	require.Equal(t, int64(1), asynq, "asynq's keys")
	require.True(t, queue, "asynq's queue set")
}

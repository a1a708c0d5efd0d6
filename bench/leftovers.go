package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// A run removes its schemas and keys when it ends, but a run that is killed (a timeout, a
// signal it cannot catch) leaves them behind: Postgres schemas, Redis keys under bench:, taskq's
// streams and asynq's queues. The next run removes them, when no other run is alive to own them.
//
// Every run holds a shared advisory lock on runLockKey from its first schema to its exit (the
// lock goes with its connection, so a killed run's goes too). A run that can take the lock
// exclusively before that is alone, and whatever it finds is left over.

// runLockKey is the advisory lock of bench runs ("bench" in ASCII).
const runLockKey int64 = 0x62656e6368

// leftoverNames says what a sweep removes.
type leftoverNames struct {
	schemaLike string         // a LIKE pattern for the schemas' names
	schema     *regexp.Regexp // the schemas' names, exactly
	keys       []string       // SCAN patterns on the bench's Redis database
	asynqKeys  string         // a SCAN pattern on asynq's database
	asynqQueue string         // the prefix of asynq's queue names
}

// runNames are the names a run gives what it creates: its server's schema and Redis prefix
// (server.go: bench_<hex>, bench:<hex>:), River's schema, taskq's streams and asynq's queues,
// which take the prefix (case_dispatch.go).
var runNames = leftoverNames{
	schemaLike: `bench\_%`,
	schema:     regexp.MustCompile(`^bench_(river_)?[0-9a-f]+$`),
	keys:       []string{"bench:*", "taskq:{bench:*"},
	asynqKeys:  "asynq:{bench:*",
	asynqQueue: "bench:",
}

var runLock struct {
	once sync.Once
	conn *pgx.Conn // holds the shared lock until the process exits
	err  error
}

// holdRunLock takes this run's share of the lock once per process, first removing what dead runs
// left when no other run is alive. Called before a run creates anything in Postgres or Redis.
func holdRunLock(ctx context.Context) error {
	runLock.once.Do(func() {
		runLock.conn, runLock.err = takeRunLock(ctx, runLockKey, runNames, func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
		})
	})
	return runLock.err
}

// takeRunLock connects to the bench's Postgres and returns the connection holding a shared lock
// on key, having first swept the names given when it could take the lock alone.
func takeRunLock(ctx context.Context, key int64, names leftoverNames, logf func(string, ...any)) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, benchDatabaseURL())
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres at %s: %w", benchDatabaseURL(), err)
	}
	var alone bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&alone); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if alone {
		// A run that starts meanwhile waits below for the shared lock, so it creates nothing
		// before this sweep is over.
		if err := sweepLeftovers(ctx, conn, names, logf); err != nil {
			logf("removing what earlier runs left: %v", err) // not this run's failure
		}
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Close(ctx)
			return nil, err
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock_shared($1)", key); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// sweepLeftovers drops the schemas and deletes the keys that runs no longer alive left behind.
func sweepLeftovers(ctx context.Context, conn *pgx.Conn, names leftoverNames, logf func(string, ...any)) error {
	rows, err := conn.Query(ctx, "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", names.schemaLike)
	if err != nil {
		return err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range schemas {
		if !names.schema.MatchString(name) {
			continue
		}
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			errs = append(errs, err)
			continue
		}
		logf("dropped schema %s, left by an earlier run", name)
	}
	opt, err := redis.ParseURL(benchRedisURL())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, pattern := range names.keys {
		errs = append(errs, sweepKeys(ctx, rdb, pattern, logf))
	}
	opt.DB = dispatchAsynqDB
	adb := redis.NewClient(opt)
	defer adb.Close()
	errs = append(errs, sweepKeys(ctx, adb, names.asynqKeys, logf))
	// asynq lists its queues in a set; a queue whose keys are gone leaves it too.
	queues, err := adb.SMembers(ctx, asynqQueues).Result()
	errs = append(errs, err)
	for _, q := range queues {
		if strings.HasPrefix(q, names.asynqQueue) {
			errs = append(errs, adb.SRem(ctx, asynqQueues, q).Err())
		}
	}
	return errors.Join(errs...)
}

// asynqQueues is the set in which asynq lists its queues.
const asynqQueues = "asynq:queues"

// sweepKeys deletes the keys matching pattern and says how many there were.
func sweepKeys(ctx context.Context, rdb *redis.Client, pattern string, logf func(string, ...any)) error {
	n, err := countDeleteKeys(ctx, rdb, pattern)
	if n > 0 {
		logf("deleted %d Redis keys matching %s, left by an earlier run", n, pattern)
	}
	return err
}

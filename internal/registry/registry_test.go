package registry_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/internal/registry"
)

const waitTimeout = 10 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// running is a worker registration whose Run goroutine the test controls.
type running struct {
	w    *registry.Worker
	stop context.CancelFunc
	done chan struct{}
}

func start(t *testing.T, reg *registry.Registry, cfg registry.Config) *running {
	t.Helper()
	cfg.Logger = quiet
	w, err := reg.NewWorker(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, stop: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); w.Run(ctx) }()
	t.Cleanup(r.halt)
	return r
}

// halt stops Run and waits for it to return.
func (r *running) halt() {
	r.stop()
	<-r.done
}

func ids(list []registry.Info) []string {
	out := make([]string, len(list))
	for i, w := range list {
		out[i] = w.ID
	}
	return out
}

// listed polls List until want(ids) holds.
func listed(t *testing.T, reg *registry.Registry, want func([]string) bool) []registry.Info {
	t.Helper()
	return listedWith(t, reg, func(got []registry.Info) bool { return want(ids(got)) })
}

// listedWith waits until one List answer satisfies want and returns that answer.
func listedWith(t *testing.T, reg *registry.Registry, want func([]registry.Info) bool) []registry.Info {
	t.Helper()
	var got []registry.Info
	require.Eventually(t, func() bool {
		var err error
		got, err = reg.List(context.Background())
		require.NoError(t, err)
		return want(got)
	}, waitTimeout, 10*time.Millisecond, "listed: %v", ids(got))
	return got
}

func TestWorkersComeAndGo(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	reg := registry.New(rdb, prefix)

	// b writes through a client of its own, so the test can cut it off as a dying process's
	// connection is.
	bClient := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB})
	t.Cleanup(func() { _ = bClient.Close() })

	a := start(t, reg, registry.Config{ID: "a", Host: "h1", Version: "v1", TotalSlots: 3, Interval: 200 * time.Millisecond})
	b := start(t, registry.New(bClient, prefix), registry.Config{ID: "b", Host: "h0", Version: "v1", TotalSlots: 2,
		Interval: 50 * time.Millisecond, TTL: 2 * time.Second})

	both := listed(t, reg, func(ids []string) bool { return len(ids) == 2 })
	require.Equal(t, []string{"b", "a"}, ids(both), "ordered by host")
	wa := both[1]
	require.Equal(t, "h1", wa.Host)
	require.Equal(t, "v1", wa.Version)
	require.Equal(t, 3, wa.TotalSlots)
	require.Zero(t, wa.BusySlots)
	require.NotZero(t, wa.PID)
	require.False(t, wa.StartTime.After(wa.LastHeartbeat))
	first := wa.LastHeartbeat
	listed(t, reg, func([]string) bool {
		l, _ := reg.List(context.Background())
		return len(l) == 2 && l[1].LastHeartbeat.After(first)
	})

	// a stops cleanly: its record goes at once.
	a.halt()
	got, err := reg.List(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids(got))
	n, err := rdb.Exists(context.Background(), prefix+"workers:a").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the record itself is deleted, not only its index entry")

	// b dies: its connection is gone, so it can neither heartbeat nor remove its record, which
	// stays until its TTL runs out.
	require.NoError(t, bClient.Close())
	b.halt()
	ttl, err := rdb.PTTL(context.Background(), prefix+"workers:b").Result()
	require.NoError(t, err)
	require.Positive(t, ttl, "the dead worker's record expires by itself")
	listed(t, reg, func(ids []string) bool { return len(ids) == 0 })
	member, err := rdb.SIsMember(context.Background(), prefix+"workers", "b").Result()
	require.NoError(t, err)
	require.False(t, member, "List drops the expired worker from the index")
}

func TestActivity(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	reg := registry.New(rdb, prefix)
	// A long interval: the record must follow batch changes at once, not at the next heartbeat.
	r := start(t, reg, registry.Config{ID: "w", TotalSlots: 2, Interval: time.Hour})
	job1, job2 := uuid.New(), uuid.New()
	b1, b2, b3 := uuid.New(), uuid.New(), uuid.New()

	r.w.BatchStarted(job1, b1)
	r.w.BatchStarted(job2, b2)
	r.w.BatchStarted(job1, b3)
	r.w.DocumentDone(false)
	r.w.DocumentDone(true)
	info := r.w.Info()
	require.Equal(t, 3, info.BusySlots)
	require.ElementsMatch(t, []string{job1.String(), job2.String()}, info.ActiveJobs, "each job once")
	require.EqualValues(t, 2, info.DocumentsProcessed)
	require.EqualValues(t, 1, info.DocumentsFailed)

	// The record written after the first BatchStarted also shows one busy slot: the wait is for
	// one that shows the documents too, written after both ends.
	r.w.BatchEnded(b1)
	r.w.BatchEnded(b2)
	got := listedWith(t, reg, func(l []registry.Info) bool {
		return len(l) == 1 && l[0].BusySlots == 1 && l[0].DocumentsProcessed == 2
	})
	require.Equal(t, []string{job1.String()}, got[0].ActiveJobs)
	require.EqualValues(t, 1, got[0].DocumentsFailed)

	r.w.BatchEnded(b3)
	got = listedWith(t, reg, func(l []registry.Info) bool {
		return len(l) == 1 && l[0].BusySlots == 0 && l[0].DocumentsProcessed == 2
	})
	require.Empty(t, got[0].ActiveJobs)
}

// A worker whose Redis is away keeps running and stops when asked.
func TestRedisAway(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	reg := registry.New(dead, "x:")
	r := start(t, reg, registry.Config{ID: "w", Interval: 20 * time.Millisecond})
	r.w.BatchStarted(uuid.New(), uuid.New())
	r.halt()
	_, err := reg.List(context.Background())
	require.Error(t, err)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	reg := registry.New(nil, "")
	_, err := reg.NewWorker(registry.Config{})
	require.ErrorIs(t, err, registry.ErrNoID)
	_, err = reg.NewWorker(registry.Config{ID: "w", Interval: time.Second, TTL: time.Millisecond})
	require.ErrorContains(t, err, "interval")
}

// TestUnreadableRecordIsSkipped: a record this version cannot read (a newer worker's, during a
// rolling upgrade) leaves the list instead of failing ListWorkers and GetStats for everyone.
func TestUnreadableRecordIsSkipped(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.New(t)
	reg := registry.New(rdb, prefix)
	start(t, reg, registry.Config{ID: "a", Host: "h1", Version: "v1", TotalSlots: 1, Interval: 200 * time.Millisecond})
	ctx := t.Context()
	require.NoError(t, rdb.Set(ctx, prefix+"workers:future", "not json", time.Minute).Err())
	require.NoError(t, rdb.SAdd(ctx, prefix+"workers", "future").Err())
	// Registration is asynchronous: wait for "a", then the garbage record must not be in the way.
	list := listed(t, reg, func(ids []string) bool { return len(ids) == 1 && ids[0] == "a" })
	require.Len(t, list, 1)
	ok, err := rdb.SIsMember(ctx, prefix+"workers", "future").Result()
	require.NoError(t, err)
	require.True(t, ok, "the unreadable record is kept (a newer worker's), not pruned")
}

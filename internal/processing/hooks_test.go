package processing

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// hooksFixture is Hooks on a fresh schema and Redis prefix, with a Manager whose Notifier they
// are when notify is set.
type hooksFixture struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	prefix string
	store  *content.PgStore
	h      *Hooks
	mgr    *jobs.Manager
}

func newHooksFixture(t *testing.T, notify bool) *hooksFixture {
	t.Helper()
	f := &hooksFixture{pool: dbtest.New(t)}
	f.rdb, f.prefix = redistest.New(t)
	log := slog.New(slog.DiscardHandler)
	f.store = content.NewPgStore(f.pool)
	f.h = &Hooks{Bus: events.New(f.rdb, f.prefix, log), Redis: f.rdb, Prefix: f.prefix, Content: f.store, ResultTTL: time.Hour, Log: log}
	cfg := jobs.Config{Logger: log}
	if notify {
		cfg.Notifier = f.h
	}
	mgr, err := jobs.NewManager(jobs.NewPgStore(f.pool), cfg)
	require.NoError(t, err)
	f.h.Jobs, f.mgr = mgr, mgr
	return f
}

// TestJobsChangedForAGroup: the jobs one group commit ended are announced together. Every job
// gets its status cache and result summary (one pipeline); of the sources, the one with no
// other active processing job is settled (by the last of its jobs to finish), and the one with
// an active job stays PROCESSING; a watcher hears every job's version. It still works when
// Redis has forgotten the status script (a restarted Redis).
//
// Not parallel: it empties Redis's script cache, which is the server's, not a test's: a test
// counting round trips beside it would see a script loaded again (TestJobsChangedEventsRideOnTheKeys).
func TestJobsChangedForAGroup(t *testing.T) {
	ctx := t.Context()
	f := newHooksFixture(t, true)
	pool, rdb, prefix, store, bus, h, mgr := f.pool, f.rdb, f.prefix, f.store, f.h.Bus, f.h, f.mgr

	newSource := func() uuid.UUID {
		src, err := store.CreateSource(ctx, &content.CreateSourceParams{Name: "s"})
		require.NoError(t, err)
		return uuid.MustParse(src.ID)
	}
	status := func(id uuid.UUID) (content.SourceStatus, string) {
		src, err := store.GetSource(ctx, &content.GetSourceParams{ID: id.String()})
		require.NoError(t, err)
		return src.Status, src.Error
	}
	create := func(src uuid.UUID) *jobs.Job {
		job, err := mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: src, DocumentIDs: []uuid.UUID{uuid.New()}})
		require.NoError(t, err)
		_, err = mgr.Start(ctx, job.ID)
		require.NoError(t, err)
		return job
	}
	a, b := newSource(), newSource()
	first, last, other := create(a), create(a), create(b)
	create(b) // still running: b stays PROCESSING
	st, _ := status(a)
	require.Equal(t, content.SourceStatusProcessing, st, "a new processing job moves its source")

	// End three jobs in the database without the Manager's announcements, then announce them
	// as one group, as a group commit does.
	_, err := pool.Exec(ctx, `UPDATE jobs SET status = 'completed', version = version + 1, finished_at = now() - interval '1 minute' WHERE id = $1`, first.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE jobs SET status = 'failed', error = 'boom', version = version + 1, finished_at = now() WHERE id = ANY ($1)`, []uuid.UUID{last.ID, other.ID})
	require.NoError(t, err)
	var ended []*jobs.Job
	for _, j := range []*jobs.Job{last, first, other} { // the last to finish is not the last listed
		got, err := mgr.Get(ctx, j.ID)
		require.NoError(t, err)
		ended = append(ended, got)
	}
	subs := make([]*events.Subscription, len(ended))
	for i, j := range ended {
		subs[i] = bus.Subscribe(j.ID)
		defer subs[i].Close()
	}

	require.NoError(t, rdb.ScriptFlush(ctx).Err(), "as after a restart of Redis")
	require.NoError(t, h.JobsChanged(ctx, ended))

	for i, j := range ended {
		for _, key := range []string{StatusKey(prefix, j.ID), ResultKey(prefix, j.ID)} {
			raw, err := rdb.Get(ctx, key).Result()
			require.NoError(t, err, key)
			var sum Summary
			require.NoError(t, json.Unmarshal([]byte(raw), &sum))
			require.Equal(t, string(j.Status), sum.Status, key)
		}
		select {
		case <-subs[i].C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		announced, _, _ := subs[i].Latest()
		require.Equal(t, j.Version, announced)
	}
	st, msg := status(a)
	require.Equal(t, content.SourceStatusFailed, st, "settled by the last of its jobs to finish")
	require.Equal(t, "boom", msg)
	st, _ = status(b)
	require.Equal(t, content.SourceStatusProcessing, st, "another job of the source is still running")
}

// tripRecorder records the commands of each round trip a Redis client makes for its caller
// (a pipeline, or one command), leaving out those that set up a new connection.
type tripRecorder struct {
	mu    sync.Mutex
	trips [][]string
}

func (*tripRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *tripRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (r *tripRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.add(cmds)
		return next(ctx, cmds)
	}
}

func (r *tripRecorder) add(cmds []redis.Cmder) {
	names := make([]string, 0, len(cmds))
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "client", "auth", "select":
			continue // a new connection's setup
		}
		names = append(names, c.Name())
	}
	if len(names) > 0 {
		r.mu.Lock()
		r.trips = append(r.trips, names)
		r.mu.Unlock()
	}
}

// take returns the trips recorded so far and forgets them.
func (r *tripRecorder) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.trips
	r.trips = nil
	return t
}

// TestJobsChangedEventsRideOnTheKeys: a group's events to other replicas go in the status keys'
// pipeline, after the keys: one Redis round trip for the whole group, whether its jobs progressed
// or ended (their sources are settled in Postgres before that round trip). A replica that hears
// a notice finds the key at that version already, and an ended job's source settled. Local
// watchers hear it as well. After a restart of Redis (the status script forgotten) the keys are
// still written and the events still heard.
//
// Not parallel: it counts round trips, which a script cache emptied meanwhile by another test
// would change, and empties that cache itself (TestJobsChangedForAGroup).
func TestJobsChangedEventsRideOnTheKeys(t *testing.T) {
	ctx := t.Context()
	// The Manager announces nothing itself: the test calls JobsChanged and counts its trips.
	f := newHooksFixture(t, false)
	pool, rdb, prefix, store, bus, h, mgr := f.pool, f.rdb, f.prefix, f.store, f.h.Bus, f.h, f.mgr

	// Another replica's view: the raw channel, read by a client of its own.
	other := redis.NewClient(rdb.Options())
	defer other.Close()
	ps := other.Subscribe(ctx, prefix+"pipeline:job-events")
	defer ps.Close()
	_, err := ps.Receive(ctx) // the subscription is in place
	require.NoError(t, err)

	trips := &tripRecorder{}
	rdb.AddHook(trips)
	for _, tc := range []struct {
		name       string
		flush, end bool
		trip       []string
	}{
		{name: "running", trip: []string{"evalsha", "evalsha", "evalsha", "publish"}},
		{name: "running, script forgotten", flush: true},
		{name: "ended", end: true, trip: []string{"evalsha", "set", "evalsha", "set", "evalsha", "set", "publish"}},
	} {
		t.Log(tc.name)
		src, err := store.CreateSource(ctx, &content.CreateSourceParams{Name: tc.name})
		require.NoError(t, err)
		var running []*jobs.Job
		for range 3 {
			j, err := mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: uuid.MustParse(src.ID), DocumentIDs: []uuid.UUID{uuid.New()}})
			require.NoError(t, err)
			require.NoError(t, h.startSource(ctx, j)) // as the announcement of a new job does
			j, err = mgr.Start(ctx, j.ID)
			require.NoError(t, err)
			if tc.end {
				_, err = pool.Exec(ctx, `UPDATE jobs SET status = 'completed', version = version + 1, finished_at = now() WHERE id = $1`, j.ID)
				require.NoError(t, err)
				j, err = mgr.Get(ctx, j.ID)
				require.NoError(t, err)
			}
			running = append(running, j)
		}
		sub := bus.Subscribe(running[1].ID)
		if tc.flush {
			require.NoError(t, rdb.ScriptFlush(ctx).Err(), "as after a restart of Redis")
		} else {
			require.NoError(t, statusScript.Load(ctx, rdb).Err())
		}
		trips.take()
		require.NoError(t, h.JobsChanged(ctx, running))
		if tc.trip != nil {
			require.Equal(t, [][]string{tc.trip}, trips.take(), "keys and events in one round trip, the events last")
		}

		select {
		case <-sub.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		announced, _, _ := sub.Latest()
		require.Equal(t, running[1].Version, announced, "a local watcher hears it")
		sub.Close()

		heard := map[string]bool{}
		ours := map[string]bool{}
		for _, j := range running {
			ours[j.ID.String()] = true
		}
		for len(heard) < len(running) {
			msg, err := ps.ReceiveMessage(ctx)
			require.NoError(t, err)
			for n := range strings.FieldsSeq(msg.Payload) {
				id, version, ok := strings.Cut(n, ":")
				require.True(t, ok, n)
				if !ours[id] {
					continue // an earlier case's (sent twice after the script was forgotten)
				}
				raw, err := other.Get(ctx, StatusKey(prefix, uuid.MustParse(id))).Result()
				require.NoError(t, err, "the key is written before the event is heard")
				var sum Summary
				require.NoError(t, json.Unmarshal([]byte(raw), &sum))
				require.Equal(t, version, strconv.FormatInt(sum.Version, 10))
				if tc.end {
					got, err := store.GetSource(ctx, &content.GetSourceParams{ID: src.ID})
					require.NoError(t, err)
					require.Equal(t, content.SourceStatusReady, got.Status, "the source is settled before the event is heard")
				}
				heard[id] = true
			}
		}
		for _, j := range running {
			require.True(t, heard[j.ID.String()], "job %s announced", j.ID)
		}
	}
}

// TestStatusCacheNeverMovesBack: the status cache keeps the newest version it was given, so
// changes announced out of order (two processes, a late retry) cannot move it backwards. The
// version is read from the start of the value, and from anywhere in a value written before it
// came first.
func TestStatusCacheNeverMovesBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb, prefix := redistest.New(t)
	log := slog.New(slog.DiscardHandler)
	h := &Hooks{Bus: events.New(rdb, prefix, log), Redis: rdb, Prefix: prefix, ResultTTL: time.Hour, Log: log}
	id := uuid.New()
	key := StatusKey(prefix, id)
	cached := func() (int64, string) {
		raw, err := rdb.Get(ctx, key).Result()
		require.NoError(t, err)
		var sum Summary
		require.NoError(t, json.Unmarshal([]byte(raw), &sum))
		return sum.Version, sum.Status
	}
	change := func(version int64, status jobs.Status) {
		t.Helper()
		j := &jobs.Job{ID: id, Type: jobs.TypeProcess, Status: status, SourceID: uuid.New(), Version: version}
		require.NoError(t, h.JobsChanged(ctx, []*jobs.Job{j}))
	}

	change(5, jobs.StatusInProgress)
	raw, err := rdb.Get(ctx, key).Result()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(raw, `{"version":5,`), raw)
	change(3, jobs.StatusPending)
	v, st := cached()
	require.Equal(t, int64(5), v, "an older version does not replace a newer one")
	require.Equal(t, string(jobs.StatusInProgress), st)
	change(5, jobs.StatusPending)
	v, st = cached()
	require.Equal(t, []any{int64(5), string(jobs.StatusInProgress)}, []any{v, st}, "nor does the same version again")
	change(12, jobs.StatusInProgress)
	v, _ = cached()
	require.Equal(t, int64(12), v, "a newer one does (12 after 5: compared as numbers)")

	// As an earlier release wrote it: the version inside.
	require.NoError(t, rdb.Set(ctx, key, `{"job_id":"`+id.String()+`","status":"in_progress","version":20}`, time.Hour).Err())
	change(19, jobs.StatusPending)
	v, _ = cached()
	require.Equal(t, int64(20), v, "read from inside an older value")
	change(21, jobs.StatusInProgress)
	v, _ = cached()
	require.Equal(t, int64(21), v)
}

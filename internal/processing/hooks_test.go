package processing

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// TestJobsChangedForAGroup: the jobs one group commit ended are announced together. Every job
// gets its status cache and result summary (one pipeline); of the sources, the one with no
// other active processing job is settled (by the last of its jobs to finish), and the one with
// an active job stays PROCESSING; a watcher hears every job's version. It still works when
// Redis has forgotten the status script (a restarted Redis).
func TestJobsChangedForAGroup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.New(t)
	rdb, prefix := redistest.New(t)
	log := slog.New(slog.DiscardHandler)
	store := content.NewPgStore(pool)
	bus := events.New(rdb, prefix, log)
	h := &Hooks{Bus: bus, Redis: rdb, Prefix: prefix, Content: store, ResultTTL: time.Hour, Log: log}
	mgr, err := jobs.NewManager(jobs.NewPgStore(pool), jobs.Config{Notifier: h, Logger: log})
	require.NoError(t, err)
	h.Jobs = mgr

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
	_, err = pool.Exec(ctx, `UPDATE jobs SET status = 'completed', version = version + 1, finished_at = now() - interval '1 minute' WHERE id = $1`, first.ID)
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

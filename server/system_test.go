package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/internal/registry"
	"github.com/pipeline-dev/pipeline/server"
)

// gatedEmbedder fails texts containing "FAIL-ME" (permanently) and holds texts containing
// "HOLD-ME" until gate is closed.
type gatedEmbedder struct {
	embed.Embedder
	gate chan struct{}
}

func (g *gatedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for _, t := range texts {
		if strings.Contains(t, "FAIL-ME") {
			return nil, errors.New("the embedder refuses this text")
		}
		if strings.Contains(t, "HOLD-ME") {
			select {
			case <-g.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return g.Embedder.Embed(ctx, texts)
}

// workerPool is one in-process worker pool (one worker process's worth) the test stops.
type workerPool struct {
	stop context.CancelFunc
	done chan error
}

func (b *testBundle) startWorkers(t *testing.T) *workerPool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &workerPool{stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- b.app.RunWorkers(ctx, b.conn.Target(), "") }()
	t.Cleanup(func() { p.halt(t) })
	return p
}

// halt stops the pool and waits until RunWorkers returned. Safe to call twice.
func (p *workerPool) halt(t *testing.T) {
	p.stop()
	if p.done == nil {
		return
	}
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(2 * waitTimeout):
		require.FailNow(t, "workers did not stop")
	}
	p.done = nil
}

func (b *testBundle) listWorkers(t *testing.T) []*pipelinev1.Worker {
	t.Helper()
	resp, err := b.system.ListWorkers(tctx(t), &pipelinev1.ListWorkersRequest{})
	require.NoError(t, err)
	return resp.GetWorkers()
}

func (b *testBundle) stats(t *testing.T) *pipelinev1.GetStatsResponse {
	t.Helper()
	resp, err := b.system.GetStats(tctx(t), &pipelinev1.GetStatsRequest{})
	require.NoError(t, err)
	return resp
}

// eventually polls cond, reporting the last value seen when it never holds.
func eventually[T any](t *testing.T, read func() T, cond func(T) bool) T {
	t.Helper()
	var last T
	require.Eventually(t, func() bool { last = read(); return cond(last) }, waitTimeout, 20*time.Millisecond, "last seen: %v", func() any { return last }())
	return last
}

// TestWorkersAndStatsFollowProcessing runs two worker pools on a real job and checks that
// ListWorkers and GetStats show what happens: the worker holding the batch lists the job and the
// documents it finished, GetStats counts the job, the backlog and the throughput, and a worker
// that stops cleanly leaves the list at once.
func TestWorkersAndStatsFollowProcessing(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) {
		c.WorkerHeartbeat = 250 * time.Millisecond
		c.MaxConcurrentJobs = 2
		c.RetryBaseDelay = time.Millisecond
	})
	gated := &gatedEmbedder{Embedder: b.app.Embedder, gate: make(chan struct{})}
	b.app.Embedder = gated
	b.app.Version = "v-test"
	w1 := b.startWorkers(t)
	first := eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) },
		func(ws []*pipelinev1.Worker) bool { return len(ws) == 1 })[0].GetWorkerId()
	b.startWorkers(t)

	workers := eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) },
		func(ws []*pipelinev1.Worker) bool { return len(ws) == 2 })
	for _, w := range workers {
		require.Equal(t, "v-test", w.GetVersion())
		require.EqualValues(t, 2, w.GetTotalSlots())
		require.Zero(t, w.GetBusySlots())
		require.Empty(t, w.GetActiveJobIds())
		require.NotEmpty(t, w.GetHost())
		require.NotZero(t, w.GetPid())
		require.NotEmpty(t, w.GetWorkerId())
		require.False(t, w.GetStartTime().AsTime().After(w.GetLastHeartbeatTime().AsTime()))
	}
	st := b.stats(t)
	require.EqualValues(t, 2, st.GetWorkers().GetWorkers())
	require.EqualValues(t, 4, st.GetWorkers().GetTotalSlots())
	require.Zero(t, st.GetThroughput().GetDocuments())

	// A first job of five documents, one of which fails.
	src := b.createSource(t)
	docs := docInputs(6)
	docs[4].Content += " FAIL-ME"
	docs[5].Content += " HOLD-ME"
	ing, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docs[:5]})
	require.NoError(t, err)
	untilStatus(t, b.watch(t, ing.GetJob().GetJobId()), pipelinev1.JobStatus_JOB_STATUS_COMPLETED, 0)

	sum := func(ws []*pipelinev1.Worker) (processed, failed int64) {
		for _, w := range ws {
			processed += w.GetDocumentsProcessed()
			failed += w.GetDocumentsFailed()
		}
		return processed, failed
	}
	workers = eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) }, func(ws []*pipelinev1.Worker) bool {
		p, _ := sum(ws)
		return p == 5
	})
	_, failed := sum(workers)
	require.EqualValues(t, 1, failed)
	st = b.stats(t)
	require.EqualValues(t, 5, st.GetThroughput().GetDocuments())
	require.EqualValues(t, 4, st.GetThroughput().GetSucceeded())
	require.EqualValues(t, 1, st.GetThroughput().GetFailed())
	require.InDelta(t, 5.0/60, st.GetThroughput().GetDocumentsPerSecond(), 1e-9)
	require.Equal(t, time.Minute, st.GetThroughput().GetWindow().AsDuration())
	require.EqualValues(t, 1, st.GetProcessJobs().GetCompleted())
	require.EqualValues(t, 5, st.GetWorkers().GetDocumentsProcessed())
	require.Equal(t, "unknown", st.GetServerVersion(), "the server was built before the version was set")

	// A second job whose one document is held: the worker holding it lists the job.
	ing, err = b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docs[5:]})
	require.NoError(t, err)
	jobID := ing.GetJob().GetJobId()
	busy := func(ws []*pipelinev1.Worker) *pipelinev1.Worker {
		for _, w := range ws {
			if w.GetBusySlots() > 0 {
				return w
			}
		}
		return nil
	}
	workers = eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) }, func(ws []*pipelinev1.Worker) bool {
		return busy(ws) != nil
	})
	holder := busy(workers)
	require.Equal(t, []string{jobID}, holder.GetActiveJobIds())
	require.EqualValues(t, 1, holder.GetBusySlots())
	st = b.stats(t)
	require.EqualValues(t, 1, st.GetProcessJobs().GetInProgress())
	require.EqualValues(t, 1, st.GetJobs().GetInProgress())
	require.EqualValues(t, 1, st.GetJobs().GetCompleted())
	require.Zero(t, st.GetCrawlJobs().GetInProgress())
	require.EqualValues(t, 1, st.GetQueue().GetBatchesRunning())
	require.Zero(t, st.GetQueue().GetBatchesQueued())
	require.EqualValues(t, 1, st.GetWorkers().GetBusySlots())

	close(gated.gate)
	untilStatus(t, b.watch(t, jobID), pipelinev1.JobStatus_JOB_STATUS_COMPLETED, 0)
	workers = eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) }, func(ws []*pipelinev1.Worker) bool {
		p, _ := sum(ws)
		return len(ws) == 2 && busy(ws) == nil && p == 6
	})
	for _, w := range workers {
		require.Empty(t, w.GetActiveJobIds())
	}
	// The queue acknowledges a message after its handler returned: a moment after the registry
	// shows the batch ended.
	st = eventually(t, func() *pipelinev1.GetStatsResponse { return b.stats(t) }, func(s *pipelinev1.GetStatsResponse) bool {
		return s.GetQueue().GetMessagesWaiting()+s.GetQueue().GetMessagesInFlight() == 0
	})
	require.EqualValues(t, 6, st.GetThroughput().GetDocuments())
	require.EqualValues(t, 5, st.GetThroughput().GetSucceeded())
	require.EqualValues(t, 1, st.GetThroughput().GetFailed())
	require.EqualValues(t, 2, st.GetJobs().GetCompleted())
	require.Zero(t, st.GetJobs().GetInProgress()+st.GetJobs().GetPending())
	require.Zero(t, st.GetQueue().GetBatchesRunning()+st.GetQueue().GetBatchesQueued())
	require.EqualValues(t, 6, st.GetWorkers().GetDocumentsProcessed())

	// A wider window counts the same documents over more seconds.
	resp, err := b.system.GetStats(tctx(t), &pipelinev1.GetStatsRequest{RateWindow: durationpb.New(10 * time.Minute)})
	require.NoError(t, err)
	require.EqualValues(t, 6, resp.GetThroughput().GetDocuments())
	require.InDelta(t, 6.0/600, resp.GetThroughput().GetDocumentsPerSecond(), 1e-9)

	// A worker that stops cleanly is gone at once.
	w1.halt(t)
	left := b.listWorkers(t)
	require.Len(t, left, 1)
	require.NotEqual(t, first, left[0].GetWorkerId())
}

// TestDeadWorkerExpires: a worker whose process dies (its Redis connection is gone, so it can
// neither heartbeat nor remove its record) leaves ListWorkers when its record's TTL runs out,
// while a live one stays.
func TestDeadWorkerExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rdb, _ := redistest.New(t)
	live := registerWorker(t, registry.New(rdb, b.cfg.RedisPrefix), "live-worker", "host-a", time.Hour)

	dyingClient := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, DB: rdb.Options().DB})
	t.Cleanup(func() { _ = dyingClient.Close() })
	dying := registerWorker(t, registry.New(dyingClient, b.cfg.RedisPrefix), "dying-worker", "host-b", 200*time.Millisecond)

	eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) }, func(ws []*pipelinev1.Worker) bool { return len(ws) == 2 })
	resp, err := b.system.ListWorkers(tctx(t), &pipelinev1.ListWorkersRequest{Host: "host-b"})
	require.NoError(t, err)
	require.Len(t, resp.GetWorkers(), 1, "the host filter")
	require.Equal(t, "dying-worker", resp.GetWorkers()[0].GetWorkerId())

	require.NoError(t, dyingClient.Close())
	dying()
	ws := eventually(t, func() []*pipelinev1.Worker { return b.listWorkers(t) }, func(ws []*pipelinev1.Worker) bool { return len(ws) == 1 })
	require.Equal(t, "live-worker", ws[0].GetWorkerId())
	require.EqualValues(t, 1, b.stats(t).GetWorkers().GetWorkers())
	live()
	require.Empty(t, b.listWorkers(t))
}

// registerWorker runs a registration with the given heartbeat interval and returns its stop.
func registerWorker(t *testing.T, reg *registry.Registry, id, host string, interval time.Duration) func() {
	t.Helper()
	w, err := reg.NewWorker(registry.Config{ID: id, Host: host, Interval: interval, TTL: 3 * interval, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func TestSystemScopes(t *testing.T) {
	t.Parallel()
	const readKey, writeKey, workerKey = "reader-0123456789abcdef", "writer-0123456789abcdef", "worker-0123456789abcdef"
	b := setup(t, withAPIKeys(readKey+":read", writeKey+":write", workerKey+":worker"))
	call := func(key string) []error {
		ctx := tctx(t)
		if key != "" {
			ctx = as(t, key)
		}
		_, err1 := b.system.ListWorkers(ctx, &pipelinev1.ListWorkersRequest{})
		_, err2 := b.system.GetStats(ctx, &pipelinev1.GetStatsRequest{})
		return []error{err1, err2}
	}
	for _, err := range call(readKey) {
		require.NoError(t, err)
	}
	for _, err := range call(writeKey) {
		requireCode(t, err, codes.PermissionDenied, "")
	}
	for _, err := range call(workerKey) {
		requireCode(t, err, codes.PermissionDenied, "")
	}
	for _, err := range call("") {
		requireCode(t, err, codes.Unauthenticated, "")
	}
	for _, path := range []string{"/v1/workers", "/v1/stats"} {
		code, body := b.do(t, http.MethodGet, path, "")
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", path, body)
		code, body = b.do(t, http.MethodGet, path, "", "Authorization", "Bearer "+readKey)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
		code, body = b.do(t, http.MethodGet, path, "", "Authorization", "Bearer "+writeKey)
		require.Equal(t, http.StatusForbidden, code, "%s: %s", path, body)
	}
}

func TestSystemBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, w := range []time.Duration{500 * time.Millisecond, 2 * time.Hour, -time.Second} {
		_, err := b.system.GetStats(tctx(t), &pipelinev1.GetStatsRequest{RateWindow: durationpb.New(w)})
		requireCode(t, err, codes.InvalidArgument, "rate_window")
	}
	_, err := b.system.ListWorkers(tctx(t), &pipelinev1.ListWorkersRequest{Host: strings.Repeat("h", 256)})
	requireCode(t, err, codes.InvalidArgument, "host")

	code, body := b.do(t, http.MethodGet, "/v1/stats?rate_window=7200s", "")
	require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
	require.Contains(t, decodeError(t, body).Message, "rate_window")
	code, body = b.do(t, http.MethodGet, "/v1/stats?rate_window=300s", "")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	var st pipelinev1.GetStatsResponse
	decodeProto(t, body, &st)
	require.Equal(t, 5*time.Minute, st.GetThroughput().GetWindow().AsDuration())
}

// TestStatsCountJobsByTypeAndStatus drives jobs through the job manager into each status and
// checks GetStats counts each one where it belongs, with nothing running.
func TestStatsCountJobsByTypeAndStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.completedJob(t)
	b.pendingJob(t, 2) // two documents, one batch, queued
	cancelled := b.pendingJob(t, 1)
	_, err := b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: cancelled.GetJob().GetJobId()})
	require.NoError(t, err)
	failed := b.pendingJob(t, 1)
	_, err = b.Jobs.Fail(tctx(t), uuid.MustParse(failed.GetJob().GetJobId()), "broken")
	require.NoError(t, err)

	st := b.stats(t)
	require.Equal(t, &pipelinev1.JobCounts{Pending: 1, Completed: 1, Failed: 1, Cancelled: 1}, st.GetProcessJobs(), "%v", st.GetProcessJobs())
	require.Equal(t, &pipelinev1.JobCounts{}, st.GetCrawlJobs(), "%v", st.GetCrawlJobs())
	require.Equal(t, st.GetProcessJobs().String(), st.GetJobs().String())
	require.EqualValues(t, 1, st.GetQueue().GetBatchesQueued(), "the pending job's batch; finished jobs' batches do not count")
	require.EqualValues(t, 2, st.GetQueue().GetDocumentsQueued())
	require.Zero(t, st.GetQueue().GetBatchesRunning())
	require.EqualValues(t, 4, st.GetQueue().GetMessagesWaiting(), "every job's one message; nothing consumes them")
	require.Zero(t, st.GetQueue().GetMessagesInFlight())
	require.Positive(t, st.GetQueue().GetOldestMessageAge().AsDuration())
	require.EqualValues(t, 1, st.GetThroughput().GetDocuments(), "the completed job's document")
	require.Zero(t, st.GetWorkers().GetWorkers())
	require.NotNil(t, st.GetTime())
}

// With Redis away, the registry cannot be read: ListWorkers and GetStats answer UNAVAILABLE
// (retry) rather than an empty list or zeros.
func TestSystemRedisAway(t *testing.T) {
	t.Parallel()
	deadRedis := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = deadRedis.Close() })
	b := setupDeps(t, func(d *server.Deps) { d.Redis = deadRedis })
	_, err := b.system.ListWorkers(tctx(t), &pipelinev1.ListWorkersRequest{})
	requireCode(t, err, codes.Unavailable, "")
	_, err = b.system.GetStats(tctx(t), &pipelinev1.GetStatsRequest{})
	requireCode(t, err, codes.Unavailable, "")
}

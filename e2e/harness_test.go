// Package e2e runs the assembled service (server, reconciler, workers, queue, stores) against
// the local Postgres and Redis and checks what users care about: nothing lost, nothing
// duplicated, progress visible, failures recorded.
package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/server"
)

const waitTimeout = 30 * time.Second

// bundle is a running service with clients.
type bundle struct {
	app      *app.App
	cfg      config.Config
	grpcAddr string
	httpAddr string
	jobs     pipelinev1.JobServiceClient
	content  pipelinev1.ContentServiceClient
	search   pipelinev1.SearchServiceClient
	embedder *faultyEmbedder

	workersMu sync.Mutex
	workers   []context.CancelFunc
	wg        sync.WaitGroup
}

type options struct {
	cfg     func(*config.Config)
	app     func(*app.App) // adjusts the built service before anything runs
	workers int
	build   app.Options  // collaborators for app.BuildWith (a span recorder)
	log     *slog.Logger // the service's logger; nil discards
}

// start runs a server and its reconciler, and opts.workers worker pools, on a fresh schema and
// Redis prefix. The embedder is the hashing embedder behind a fault injector.
func start(t *testing.T, opts options) *bundle {
	t.Helper()
	_, dbURL := dbtest.NewWithURL(t)
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { cleanQueueKeys(rdb, prefix) })

	cfg := config.Default()
	cfg.DatabaseURL = dbURL
	cfg.RedisPrefix = prefix
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Migrate = false
	cfg.DataDir = t.TempDir()
	cfg.PollInterval = 200 * time.Millisecond
	cfg.WatchPollInterval = 200 * time.Millisecond
	cfg.RetryBaseDelay = 5 * time.Millisecond
	cfg.Lease = 3 * time.Second
	cfg.BatchSize = 4
	cfg.MaxConcurrentJobs = 2
	cfg.ChunkMaxTokens = 64
	cfg.ChunkOverlapTokens = 8
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.CrawlAllowLoopback = true // test sites are httptest servers on 127.0.0.1
	cfg.CrawlDelay = 0
	if opts.cfg != nil {
		opts.cfg(&cfg)
	}

	log := opts.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	a, err := app.BuildWith(ctx, cfg, log, app.RoleServer, opts.build)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	fe := &faultyEmbedder{Embedder: a.Embedder, transient: map[string]int{}}
	a.Embedder = fe
	if opts.app != nil {
		opts.app(a)
	}

	srv, err := server.New(cfg, a.ServerDeps())
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(runCtx) }()
	recDone := make(chan struct{})
	go func() { defer close(recDone); a.Reconciler.Run(runCtx) }()
	crawlsDone := make(chan struct{})
	go func() { defer close(crawlsDone); a.Crawls.Run(runCtx) }()

	b := &bundle{app: a, cfg: cfg, embedder: fe}
	t.Cleanup(func() {
		b.stopWorkers()
		stop()
		<-recDone
		<-crawlsDone
		require.NoError(t, <-runDone)
	})
	addrCtx, addrCancel := context.WithTimeout(context.Background(), waitTimeout)
	defer addrCancel()
	b.grpcAddr, b.httpAddr, err = srv.Addrs(addrCtx)
	require.NoError(t, err)

	conn, err := grpc.NewClient(b.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	b.jobs = pipelinev1.NewJobServiceClient(conn)
	b.content = pipelinev1.NewContentServiceClient(conn)
	b.search = pipelinev1.NewSearchServiceClient(conn)
	for range opts.workers {
		b.startWorker(t)
	}
	return b
}

// startWorker runs one more worker pool; stopWorkers ends them all.
func (b *bundle) startWorker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b.workersMu.Lock()
	b.workers = append(b.workers, cancel)
	b.workersMu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.app.RunWorkers(ctx, b.grpcAddr, ""); err != nil && ctx.Err() == nil {
			t.Errorf("worker: %v", err)
		}
	}()
}

func (b *bundle) stopWorkers() {
	b.workersMu.Lock()
	for _, c := range b.workers {
		c()
	}
	b.workers = nil
	b.workersMu.Unlock()
	b.wg.Wait()
}

func cleanQueueKeys(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	keys, _ := rdb.Keys(ctx, "taskq:{"+prefix+"*").Result()
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

// faultyEmbedder injects failures: texts containing "PERMANENT-FAIL" always fail permanently;
// texts containing a key of transient fail transiently that many times first. It counts calls
// per marker word so tests can prove no work was done twice.
type faultyEmbedder struct {
	embed.Embedder
	mu        sync.Mutex
	transient map[string]int
	calls     map[string]int
	block     chan struct{} // when set, texts containing "BLOCK" wait for it to close
	// interrupted counts the calls that stopped waiting for block because their ctx ended.
	interrupted int
}

func (f *faultyEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	block := f.block
	for _, t := range texts {
		seen := map[string]bool{}
		for _, w := range strings.Fields(t) {
			w = strings.Trim(w, ".,;:!?")
			if strings.HasPrefix(w, "marker") && !seen[w] {
				seen[w] = true
				f.calls[w]++ // once per embedded text that mentions it
			}
		}
		if strings.Contains(t, "PERMANENT-FAIL") {
			f.mu.Unlock()
			return nil, errors.New("embedder refused the input: invalid content")
		}
		for k, n := range f.transient {
			if n > 0 && strings.Contains(t, k) {
				f.transient[k] = n - 1
				f.mu.Unlock()
				return nil, errs.Transient(errors.New("503 service unavailable"), 0)
			}
		}
	}
	f.mu.Unlock()
	if block != nil {
		for _, t := range texts {
			if strings.Contains(t, "BLOCK") {
				select {
				case <-block:
				case <-ctx.Done():
					f.mu.Lock()
					f.interrupted++
					f.mu.Unlock()
					return nil, ctx.Err()
				}
			}
		}
	}
	return f.Embedder.Embed(ctx, texts)
}

func (f *faultyEmbedder) interruptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interrupted
}

func (f *faultyEmbedder) callsOf(marker string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[marker]
}

// watchUntilDone collects every WatchJob message until the stream ends.
func (b *bundle) watchUntilDone(t *testing.T, jobID string) []*pipelinev1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream, err := b.jobs.WatchJob(ctx, &pipelinev1.WatchJobRequest{JobId: jobID})
	require.NoError(t, err)
	var seen []*pipelinev1.Job
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return seen
		}
		require.NoError(t, err, "watch ended early after %d messages", len(seen))
		seen = append(seen, msg.GetJob())
	}
}

// Package app wires the service's parts from a Config: the Postgres pool (migrated when asked),
// Redis, the event bus, the queue, the job manager with its hooks, the content store, chunker,
// embedder and vector store, the reconciler and in-process workers. cmd/pipeline and the
// end-to-end tests build the service the same way through it.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/chunk"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/crawl/builtin"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/crawling"
	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/processing"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/registry"
	"github.com/pipeline-dev/pipeline/internal/retry"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/server"
	"github.com/pipeline-dev/pipeline/worker"
)

// App is the built service.
type App struct {
	Cfg        config.Config
	Log        *slog.Logger
	Pool       *pgxpool.Pool
	Redis      *redis.Client
	Bus        *events.Bus
	Queue      *queue.Queue
	Jobs       *jobs.Manager
	Content    *content.PgStore
	Chunker    *chunk.Chunker
	Embedder   embed.Embedder
	Vectors    vector.Store
	Purger     *processing.Purger
	Reconciler *processing.Reconciler
	Crawls     *crawling.Runner
	// Registry is the process's metrics registry (served at /metrics), Metrics its collectors,
	// Tracing the tracer provider (a no-op one unless PIPELINE_OTLP_ENDPOINT is set).
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	Tracing  *telemetry.Tracing
	// Version is the binary's version, which workers show in the worker registry and the server
	// in GetStats; cmd/pipeline sets it after Build. Empty means "unknown".
	Version string

	// workerKey is what in-process workers send: made at Build for a server with API keys,
	// handed to the server in ServerDeps, never configured or shown.
	workerKey string
	closers   []func() error
	role      Role
	opts      Options
	// metricsLis is where a `pipeline worker` serves /metrics (PIPELINE_METRICS_ADDR).
	metricsLis net.Listener
}

// Role says which process is being built: the server opens the vector store for search and
// purges; a separate worker process refuses the embedded store, which one process owns.
type Role int

const (
	// RoleServer is `serve` and `dev`.
	RoleServer Role = iota
	// RoleWorker is `worker`.
	RoleWorker
)

// Build connects everything the role needs. It fails, naming the setting, when a dependency
// cannot be reached. Close releases what it opened.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, role Role) (*App, error) {
	return BuildWith(ctx, cfg, log, role, Options{})
}

// BuildWith is Build with collaborators made by the caller (tests).
func BuildWith(ctx context.Context, cfg config.Config, log *slog.Logger, role Role, opts Options) (*App, error) {
	a := &App{Cfg: cfg, Log: log, Tracing: opts.Tracing, opts: opts}
	if role == RoleServer && len(cfg.APIKeys) > 0 {
		a.workerKey = server.NewWorkerKey()
	}
	if err := a.build(ctx, role); err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context, role Role) (err error) {
	if err := a.buildTelemetry(ctx, role); err != nil {
		return err
	}
	cfg, log := a.Cfg, a.Log
	if role == RoleWorker && cfg.VectorStore == "embedded" {
		return errors.New("PIPELINE_VECTOR_STORE=embedded: the embedded vector store lives inside one process, so a separate `pipeline worker` cannot share it; run `pipeline dev` (server and workers in one process), or use PIPELINE_VECTOR_STORE=milvus")
	}

	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("PIPELINE_DATABASE_URL: parse database url: %w", err)
	}
	if a.opts.PGTracer != nil {
		pcfg.ConnConfig.Tracer = a.opts.PGTracer
	}
	a.Pool, err = db.OpenConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("PIPELINE_DATABASE_URL: %w", err)
	}
	a.closers = append(a.closers, func() error { a.Pool.Close(); return nil })
	if cfg.Migrate && role == RoleServer {
		n, err := db.MigrateUp(ctx, a.Pool)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info("applied database migrations", "count", n)
		}
	}

	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("PIPELINE_REDIS_URL: %w", err)
	}
	a.Redis = redis.NewClient(opt)
	if a.opts.RedisCommands != nil {
		a.Redis.AddHook(commandCounter(a.opts.RedisCommands))
	}
	a.closers = append(a.closers, a.Redis.Close)
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("PIPELINE_REDIS_URL: connect to Redis at %s: %w", opt.Addr, err)
	}
	a.Bus = events.New(a.Redis, cfg.RedisPrefix, log)
	a.Queue, err = queue.Open(a.queueConfig(), a.Redis)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, a.Queue.Close)

	a.Content = content.NewPgStore(a.Pool)
	hooks := &processing.Hooks{
		Bus: a.Bus, Redis: a.Redis, Prefix: cfg.RedisPrefix, Content: a.Content, ResultTTL: cfg.ResultTTL, Log: log,
	}
	a.Jobs, err = jobs.NewManager(jobs.NewPgStore(a.Pool), jobs.Config{
		Enqueuer:       a.Queue,
		Notifier:       observedNotifier{next: hooks, m: a.Metrics},
		Logger:         log,
		DefaultTimeout: cfg.JobTimeout,
		BatchSize:      cfg.BatchSize,
	})
	if err != nil {
		return err
	}
	hooks.Jobs = a.Jobs
	a.closers = append(a.closers, func() error {
		// Claims and finishes announce their jobs right after answering: let those notices
		// reach Redis before it closes.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.Jobs.Flush(ctx)
	})

	overlap := cfg.ChunkOverlapTokens
	if overlap == 0 {
		overlap = chunk.NoOverlap // the setting's 0 means none; the chunker's 0 means its default
	}
	a.Chunker, err = chunk.New(chunk.Config{MaxTokens: cfg.ChunkMaxTokens, OverlapTokens: overlap})
	if err != nil {
		return fmt.Errorf("PIPELINE_CHUNK_MAX_TOKENS / PIPELINE_CHUNK_OVERLAP_TOKENS: %w", err)
	}
	a.Embedder, err = newEmbedder(cfg)
	if err != nil {
		return err
	}
	a.Vectors, err = openVectors(ctx, cfg)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, a.Vectors.Close)
	if err := a.instrumentStores(role); err != nil {
		return err
	}
	a.Purger = &processing.Purger{Content: a.Content, Vectors: a.Vectors, Log: log}
	crawler, err := builtin.New(builtin.Config{
		Concurrency: cfg.CrawlConcurrency, PerHostDelay: cmp.Or(cfg.CrawlDelay, builtin.NoDelay),
		AllowLoopback: cfg.CrawlAllowLoopback, AllowPrivate: cfg.CrawlAllowPrivate, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("crawler: %w", err)
	}
	a.Crawls = &crawling.Runner{Jobs: a.Jobs, Content: a.Content, Vectors: a.Vectors, Builtin: crawler, Log: log}
	if cfg.FirecrawlAPIURL != "" {
		fc, err := firecrawl.New(firecrawl.Config{BaseURL: cfg.FirecrawlAPIURL, APIKey: cfg.FirecrawlAPIKey})
		if err != nil {
			return fmt.Errorf("PIPELINE_FIRECRAWL_API_URL: %w", err)
		}
		a.Crawls.Firecrawl = &crawling.Firecrawl{
			Client:     fc,
			WebhookURL: strings.TrimSuffix(cfg.PublicURL, "/") + "/v1/webhooks/firecrawl",
			Secret:     []byte(cfg.FirecrawlWebhookSecret),
		}
	}
	hooks.CrawlCancelled = a.Crawls.CancelExternal
	a.Reconciler = &processing.Reconciler{
		Jobs: a.Jobs, Queue: a.Queue, Interval: cfg.PollInterval, Purger: a.Purger, Crawls: a.Crawls, Log: log,
	}
	return nil
}

// ServerDeps are the server's collaborators.
func (a *App) ServerDeps() server.Deps {
	return server.Deps{
		Pool: a.Pool, Redis: a.Redis, Bus: a.Bus, Jobs: a.Jobs, Content: a.Content, Log: a.Log,
		Embedder: a.Embedder, Vectors: a.Vectors, Purger: a.Purger, Crawls: a.Crawls,
		Metrics: a.Metrics, Gatherer: a.Registry, TracerProvider: a.tracerProvider(),
		WorkerKey:  a.workerKey,
		Version:    a.Version,
		QueueStats: a.Queue.Stats,
	}
}

// Close releases everything Build opened, in reverse order.
func (a *App) Close() error {
	var errList []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errList = append(errList, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errList...)
}

func newEmbedder(cfg config.Config) (embed.Embedder, error) {
	switch cfg.Embedder {
	case "openai":
		e, err := embed.NewOpenAI(embed.OpenAIConfig{
			BaseURL: cfg.OpenAIBaseURL, Model: cfg.OpenAIModel, APIKey: cfg.OpenAIAPIKey,
			Dimension: cfg.EmbedDimension, BatchSize: cfg.EmbedBatchSize, MaxConcurrency: cfg.MaxConcurrentJobs,
		})
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_EMBEDDER=openai: %w", err)
		}
		return e, nil
	default:
		e, err := embed.NewHashing(embed.HashingConfig{Dimension: cfg.EmbedDimension})
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_EMBED_DIMENSION: %w", err)
		}
		return e, nil
	}
}

// workerCredentials are plaintext unless TLS is configured. A worker trusts PIPELINE_TLS_CA_FILE;
// without it, in a process serving TLS itself (`dev`, `serve --workers=1`, which dial the gRPC
// address, usually 127.0.0.1), it trusts the server's own certificate, which must then be valid
// for that address.
func (a *App) workerCredentials() (credentials.TransportCredentials, error) {
	setting, file := "PIPELINE_TLS_CA_FILE", a.Cfg.TLSCAFile
	if file == "" && a.Cfg.TLSCertFile != "" {
		setting, file = "PIPELINE_TLS_CERT_FILE", a.Cfg.TLSCertFile
	}
	if file == "" {
		return insecure.NewCredentials(), nil
	}
	c, err := server.ClientTLS(file, setting)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(c), nil
}

// RunWorkers consumes the queue with an in-process worker pool (MaxConcurrentJobs batches at
// once) that reports to the server at serverAddr, until ctx ends. In a server process with API
// keys (`dev`, `serve --workers=1`) the workers send the app's own worker key, which that server
// accepts with the worker scope, instead of apiKey: a configured entry may be a hash or lack
// the worker scope.
func (a *App) RunWorkers(ctx context.Context, serverAddr, apiKey string) error {
	if a.workerKey != "" {
		apiKey = a.workerKey
	}
	creds, err := a.workerCredentials()
	if err != nil {
		return err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), a.traceDialOption()}
	if apiKey != "" {
		opts = append(opts, grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+apiKey), desc, cc, method, callOpts...)
		}))
	}
	conn, err := grpc.NewClient(serverAddr, opts...)
	if err != nil {
		return fmt.Errorf("PIPELINE_SERVER: %w", err)
	}
	defer conn.Close()
	// The worker's record in the registry (SystemService.ListWorkers): written while it runs,
	// removed when it stops, expired when it dies.
	id := worker.DefaultID()
	reg, err := registry.New(a.Redis, a.Cfg.RedisPrefix).NewWorker(registry.Config{
		ID: id, Version: a.Version, TotalSlots: a.totalSlots(), Interval: a.Cfg.WorkerHeartbeat, Logger: a.Log,
	})
	if err != nil {
		return err
	}
	w := worker.New(worker.Config{
		ID:    id,
		Lease: a.Cfg.Lease,
		Retry: retry.Policy{
			MaxRetries: a.Cfg.MaxRetries, BaseDelay: a.Cfg.RetryBaseDelay, Factor: a.Cfg.BackoffFactor,
		},
		EmbedBatchSize: a.Cfg.EmbedBatchSize,
		Logger:         a.Log,
		Metrics:        a.Metrics,
		Slots:          a.totalSlots(),
		TracerProvider: a.Tracing.Provider,
	}, worker.Deps{
		Jobs: a.Jobs, Content: a.Content, Chunker: a.Chunker, Embedder: a.Embedder, Vectors: a.Vectors,
		Reporter: pipelinev1.NewWorkerServiceClient(conn),
		Activity: reg,
	})
	defer w.Close() // its metric series go with it, also when the queue below cannot open
	// A consumer of its own: a queue consumes once, and a process may run several pools (tests).
	q, err := queue.Open(a.queueConfig(), a.Redis)
	if err != nil {
		return err
	}
	defer q.Close()
	// The record outlives the consumer, which waits for running batches: it is removed only when
	// the worker has nothing left in hand.
	regCtx, stopReg := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan struct{})
	go func() { defer close(regDone); reg.Run(regCtx) }()
	defer func() { stopReg(); <-regDone }()
	// Cancels reach running batches at once (worker.ListenForEnds).
	if !a.opts.NoEndNotices {
		endsCtx, stopEnds := context.WithCancel(ctx)
		endsDone := make(chan struct{})
		go func() { defer close(endsDone); w.ListenForEnds(endsCtx, a.Pool.Config().ConnConfig) }()
		defer func() { stopEnds(); <-endsDone }()
	}
	a.Log.Info("worker started", "worker_id", w.ID(), "concurrency", a.totalSlots(), "express_slots", a.totalSlots()-a.queueConfig().Workers, "server", serverAddr)
	err = a.consume(ctx, q, w)
	// Batches finish in the background (their second stage and last report) while their slots
	// take the next ones; they end before the connection to the server closes, within the same
	// shutdown timeout.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.Cfg.ShutdownTimeout)
	defer cancel()
	if werr := w.WaitBatches(wctx); werr != nil {
		a.Log.Warn("stopping with finished batches unreported; their leases will expire and other workers will finish them", "err", werr)
	}
	return err
}

// queueConfig is the queue's configuration, the same for the server's producer and every
// worker pool's consumer.
func (a *App) queueConfig() queue.Config {
	bulk, express := a.slots()
	return queue.Config{
		RedisURL: a.Cfg.RedisURL, Prefix: a.Cfg.RedisPrefix, Workers: bulk, Logger: a.Log,
		ReservationTimeout: reservationTimeout(a.Cfg), TracerProvider: a.Tracing.Provider,
		Commands: a.opts.RedisCommands,
		// Below the batch size, a job's first batch is its only one (docs/decisions/0018).
		ExpressMaxDocuments: a.expressMaxDocuments(),
		ExpressWorkers:      express,
	}
}

func (a *App) expressMaxDocuments() int {
	return max(0, min(a.Cfg.ExpressMaxDocuments, a.Cfg.BatchSize-1))
}

// slots splits a worker pool's PIPELINE_MAX_CONCURRENT_JOBS slots: with the express lane on,
// PIPELINE_EXPRESS_CONCURRENCY of them serve only the express lane and the rest, at least one,
// the bulk lane (docs/decisions/0018).
func (a *App) slots() (bulk, express int) {
	if a.expressMaxDocuments() == 0 {
		// This process sends nothing to the express lane, but its pool still serves it with one
		// slot of its own: a server or worker with the lane on (a rolling upgrade, or settings
		// that differ) may have sent small jobs there, which would otherwise wait for the
		// reconciler's overdue repair (10 minutes).
		return a.Cfg.MaxConcurrentJobs, 1
	}
	return max(1, a.Cfg.MaxConcurrentJobs-a.Cfg.ExpressConcurrency), a.Cfg.ExpressConcurrency
}

// totalSlots is how many batches one worker pool works on at once, both lanes together.
func (a *App) totalSlots() int {
	bulk, express := a.slots()
	return bulk + express
}

// reservationTimeout is how long a message taken by a consumer that died before claiming its
// batch stays out: twice the lease (at least 30 s), so such a batch comes back about as fast as
// one whose worker died after claiming it.
func reservationTimeout(cfg config.Config) time.Duration {
	return max(2*cfg.Lease, 30*time.Second)
}

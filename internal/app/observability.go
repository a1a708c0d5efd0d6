package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/queue"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
	"github.com/pipeline-dev/pipeline/worker"
)

// Options are collaborators a caller of BuildWith makes itself. Zero fields are built from the
// Config.
type Options struct {
	// Tracing replaces the tracer provider built from the PIPELINE_OTLP_* settings (tests record
	// spans in memory with it). Its Shutdown is the caller's.
	Tracing *telemetry.Tracing
	// PGTracer, when set, sees every statement the service's Postgres pool runs (benchmarks
	// count them with it).
	PGTracer pgx.QueryTracer
	// RedisCommands, when set, is told how many commands each call of the service's Redis
	// clients sent: the go-redis client and taskq's own (benchmarks count them with it). It
	// must be safe for concurrent use.
	RedisCommands func(n int)
	// NoEndNotices keeps RunWorkers' workers from listening for ended jobs (worker.ListenForEnds),
	// so that they learn of a cancel only from the status their writes read (tests of that path).
	NoEndNotices bool
}

// buildTelemetry sets up what the rest of Build hands around: the log handler that stamps
// trace, job and source ids, the process's metrics registry, and the tracer provider (a no-op
// one unless PIPELINE_OTLP_ENDPOINT is set).
func (a *App) buildTelemetry(ctx context.Context, role Role) error {
	a.role = role
	if _, ok := a.Log.Handler().(*telemetry.LogHandler); !ok {
		a.Log = slog.New(telemetry.NewLogHandler(a.Log.Handler()))
	}
	a.Registry = metrics.NewRegistry()
	a.Metrics = metrics.New(a.Registry)
	if err := a.buildTracing(ctx, role); err != nil {
		return err
	}
	return a.listenMetrics(role)
}

// buildTracing makes the tracer provider of the PIPELINE_OTLP_* settings, unless the caller
// gave one.
func (a *App) buildTracing(ctx context.Context, role Role) error {
	if a.Tracing != nil {
		return nil
	}
	headers, err := a.Cfg.ParseOTLPHeaders()
	if err != nil {
		return err
	}
	roleName := "server"
	if role == RoleWorker {
		roleName = "worker"
	}
	a.Tracing, err = telemetry.NewTracing(ctx, telemetry.TracingConfig{
		Endpoint: a.Cfg.OTLPEndpoint, Protocol: a.Cfg.OTLPProtocol, Insecure: a.Cfg.OTLPInsecure,
		CAFile: a.Cfg.OTLPCAFile, Headers: headers, SampleRatio: a.Cfg.TraceSampleRatio, Role: roleName,
	})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() error {
		// Send what is buffered, but do not hold up shutdown for an unreachable collector.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Tracing.Shutdown(ctx); err != nil {
			a.Log.Warn("tracing: spans not exported at shutdown", "err", err)
		}
		return nil
	})
	if a.Tracing.Enabled {
		a.Log.Info("tracing on", "otlp_endpoint", a.Cfg.OTLPEndpoint, "protocol", a.Cfg.OTLPProtocol, "sample_ratio", a.Cfg.TraceSampleRatio)
	}
	return nil
}

// listenMetrics opens a worker's /metrics listener now, so a taken port stops the worker at
// start, naming the setting.
func (a *App) listenMetrics(role Role) error {
	if role == RoleWorker && a.Cfg.MetricsAddr != "" {
		var err error
		a.metricsLis, err = net.Listen("tcp", a.Cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("PIPELINE_METRICS_ADDR: listen on %s: %w", a.Cfg.MetricsAddr, err)
		}
		a.closers = append(a.closers, func() error { _ = a.metricsLis.Close(); return nil })
	}
	return nil
}

// MetricsAddr is the address a `pipeline worker` serves /metrics on, "" when it serves none.
func (a *App) MetricsAddr() string {
	if a.metricsLis == nil {
		return ""
	}
	return a.metricsLis.Addr().String()
}

// instrumentStores wraps the embedder and vector store so every call is timed, counted and
// traced, and, in a server, registers the scrape-time queue and backlog gauges.
func (a *App) instrumentStores(role Role) error {
	a.Embedder = telemetry.Embedder(a.Embedder, a.Metrics, a.Tracing.Provider)
	a.Vectors = telemetry.VectorStore(a.Vectors, a.Metrics, a.Tracing.Provider)
	if role != RoleServer {
		return nil // every server reports the queue; workers would only repeat it
	}
	return metrics.RegisterQueueCollector(a.Registry, metrics.QueueReadings{
		Queue: a.Queue.Stats, Backlog: a.Jobs.Backlog, Logger: a.Log,
	})
}

// tracerProvider is what the server traces with: nil when tracing is off, so it adds no
// tracing code to any call.
func (a *App) tracerProvider() trace.TracerProvider {
	if a.Tracing == nil || !a.Tracing.Enabled {
		return nil
	}
	return a.Tracing.Provider
}

// traceDialOption carries the worker's spans to the server on its reports.
func (a *App) traceDialOption() grpc.DialOption {
	tp := a.tracerProvider()
	if tp == nil {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(telemetry.Propagator)))
}

// observedNotifier counts jobs reaching a terminal status. A job is written only while it is
// not terminal (the state machine, and every other write's WHERE clause), so the one change
// that makes it terminal is the only terminal one the notifier hears: each finished job is
// counted once, by the process that finished it.
type observedNotifier struct {
	next jobs.Notifier
	m    *metrics.Metrics
}

func (n observedNotifier) JobChanged(ctx context.Context, job *jobs.Job) error {
	n.observe(job)
	return n.next.JobChanged(ctx, job)
}

// JobsChanged implements jobs.GroupNotifier.
func (n observedNotifier) JobsChanged(ctx context.Context, list []*jobs.Job) error {
	for _, job := range list {
		n.observe(job)
	}
	if gn, ok := n.next.(jobs.GroupNotifier); ok {
		return gn.JobsChanged(ctx, list)
	}
	var errList []error
	for _, job := range list {
		errList = append(errList, n.next.JobChanged(ctx, job))
	}
	return errors.Join(errList...)
}

func (n observedNotifier) observe(job *jobs.Job) {
	if job.Status.Terminal() {
		end := job.UpdatedAt
		if job.FinishedAt != nil {
			end = *job.FinishedAt
		}
		n.m.ObserveJobFinished(string(job.Type), string(job.Status), end.Sub(job.CreatedAt))
	}
}

// consume runs the worker pool on the queue until ctx ends, then gives running batches up to
// PIPELINE_SHUTDOWN_TIMEOUT to report and hand back; a `pipeline worker` with
// PIPELINE_METRICS_ADDR also serves its /metrics meanwhile.
func (a *App) consume(ctx context.Context, q *queue.Queue, w *worker.Worker) error {
	if a.metricsLis == nil {
		return q.Consume(ctx, w.HandleBatch, a.Cfg.ShutdownTimeout)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(a.Registry))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	a.Log.Info("serving metrics", "addr", a.MetricsAddr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(a.metricsLis) }()
	err := q.Consume(ctx, w.HandleBatch, a.Cfg.ShutdownTimeout)
	_ = srv.Close()
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, fmt.Errorf("metrics server: %w", serr))
	}
	return err
}

// commandCounter is a go-redis hook that tells count how many commands each call sent.
func commandCounter(count func(n int)) redis.Hook { return redisCounter{count} }

type redisCounter struct{ count func(n int) }

func (redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(1)
		return next(ctx, cmd)
	}
}

func (c redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count(len(cmds))
		return next(ctx, cmds)
	}
}

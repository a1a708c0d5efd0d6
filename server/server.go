// Package server serves the pipeline API: gRPC on one port, and on another the REST gateway,
// health endpoints and the OpenAPI document. REST calls reach the same handlers in process,
// through the same interceptor chain (recovery, logging, error mapping, deadline, auth with
// scoped keys, rate limiting, validation) as gRPC calls (gateway.go).
// Services translate between protobuf and the domain packages; domain logic lives in those.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	grpcstats "google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/gen/openapi"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/crawling"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/processing"
	"github.com/pipeline-dev/pipeline/internal/registry"
	"github.com/pipeline-dev/pipeline/internal/stats"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Deps are the server's collaborators, built by the caller (cmd/pipeline or a test).
type Deps struct {
	Pool    *pgxpool.Pool
	Redis   *redis.Client
	Bus     *events.Bus
	Jobs    *jobs.Manager
	Content content.Store
	Log     *slog.Logger
	// Embedder and Vectors serve Search and DeleteSource; nil means no search.
	Embedder embed.Embedder
	Vectors  vector.Store
	// Purger removes deleted sources' vectors; nil when there is no vector store.
	Purger *processing.Purger
	// Crawls runs crawl jobs; nil means web sources cannot be created.
	Crawls *crawling.Runner
	// Metrics records requests (observe.go); nil records nothing.
	Metrics *metrics.Metrics
	// Gatherer is served at GET /metrics on the HTTP port; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	// TracerProvider, when set, traces every call (otelgrpc, and a span per HTTP request);
	// nil: tracing is off and costs nothing.
	TracerProvider trace.TracerProvider
	// WorkerKey, when API keys are configured, is one more key accepted with the worker scope
	// alone: the one workers in this process send (see NewWorkerKey). Empty means none.
	WorkerKey string
	// QueueStats reads the processing queue's figures for GetStats; nil leaves them zero.
	QueueStats func(context.Context) (metrics.QueueStats, error)
	// Version is the binary's version, shown by GetStats. Empty means "unknown".
	Version string
}

// Server is the gRPC server, the REST gateway and the health endpoints.
type Server struct {
	cfg       config.Config
	deps      Deps
	log       *slog.Logger
	keys      keyring
	limiter   *rateLimiter // nil: no rate limit
	validator protovalidate.Validator

	maxMessageBytes int
	rpcTimeout      time.Duration
	// tls serves both ports when set (PIPELINE_TLS_CERT_FILE); nil is plaintext.
	tls *tls.Config

	grpc    *grpc.Server
	health  *health.Server
	checker *healthChecker
	http    *http.Server

	// unary holds the handlers of the unary methods and chain the interceptors of every unary
	// call, for the gateway's in-process calls (gateway.go).
	unary map[string]unaryMethod
	chain grpc.UnaryServerInterceptor
	// serverStats and clientStats trace the gRPC server's calls and the gateway's; nil when
	// tracing is off.
	serverStats, clientStats grpcstats.Handler

	mu        sync.Mutex
	grpcAddr  net.Addr
	httpAddr  net.Addr
	ready     chan struct{}
	readyOnce sync.Once
	// stopping is closed when shutdown begins; long-lived streams end on it.
	stopping chan struct{}
	// workers receives workers' reports; shutdown waits for its notices to go out.
	workers *workerService
}

// New builds a server. Nothing listens until Run.
func New(cfg config.Config, deps Deps) (*Server, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("build request validator: %w", err)
	}
	keys, err := cfg.ParseAPIKeys()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := LoadServerTLS(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		deps:      deps,
		log:       deps.Log,
		keys:      newKeyring(keys, deps.WorkerKey),
		limiter:   newRateLimiter(cfg.RateLimit, cfg.RateBurst),
		validator: v,
		tls:       tlsCfg,
		ready:     make(chan struct{}),
		stopping:  make(chan struct{}),
	}
	s.maxMessageBytes, s.rpcTimeout = limitsOf(cfg)
	s.serverStats, s.clientStats = s.newStatsHandlers()
	s.chain = chainUnary(s.unaryChain())
	s.unary = map[string]unaryMethod{}
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(s.maxMessageBytes),
		// Undecodable requests get InvalidArgument, not grpc's Internal (codec.go): the codec,
		// the registrar below for unary calls, and decodeStream, which grpc puts before the
		// chain, so it wraps the stream first.
		grpc.ForceServerCodecV2(newServerCodec()),
		grpc.StreamInterceptor(decodeStream),
		grpc.UnaryInterceptor(s.chain),
		grpc.ChainStreamInterceptor(s.streamChain()...),
		s.traceServerOption(),
		// Workers and watchers hold long streams; grpc's default policy (one ping per 5 min)
		// answers their transports' pings with GOAWAY "too_many_pings". Allow pings every 10 s.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	reg := decodingRegistrar{srv: s.grpc, unary: s.unary}
	pipelinev1.RegisterJobServiceServer(reg, &jobService{s: s})
	pipelinev1.RegisterContentServiceServer(reg, &contentService{s: s})
	pipelinev1.RegisterSearchServiceServer(reg, &searchService{s: s})
	s.workers = &workerService{s: s}
	pipelinev1.RegisterWorkerServiceServer(reg, s.workers)
	pipelinev1.RegisterSystemServiceServer(reg, &systemService{
		s: s, workers: registry.New(deps.Redis, cfg.RedisPrefix), stats: stats.New(deps.Pool),
	})
	s.health = health.NewServer()
	s.checker = s.newHealthChecker()
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(s.grpc)
	if err := checkMethodScopes(s.grpc); err != nil {
		return nil, err
	}
	return s, nil
}

// Addrs returns the bound gRPC and HTTP addresses once Run is listening (for tests using port 0).
func (s *Server) Addrs(ctx context.Context) (grpcAddr, httpAddr string, err error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grpcAddr.String(), s.httpAddr.String(), nil
}

// Run listens on both ports and serves until ctx ends, then shuts down gracefully within the
// configured timeout: new calls are refused, watch streams end at once with Unavailable (so
// clients reconnect elsewhere), and other running calls finish or are cut at the deadline.
func (s *Server) Run(ctx context.Context) error {
	grpcLis, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s (PIPELINE_GRPC_ADDR): %w", s.cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listen HTTP on %s (PIPELINE_HTTP_ADDR): %w", s.cfg.HTTPAddr, err)
	}

	if s.tls != nil {
		// Only the network listener: the gateway's in-process connection below never leaves
		// the process, so it stays plaintext. gRPC clients require HTTP/2 by ALPN.
		c := s.tls.Clone()
		c.NextProtos = []string{"h2"}
		grpcLis = tls.NewListener(grpcLis, c)
	}

	// The gateway calls unary methods in process (gateway.go) and opens streams (WatchJob)
	// on an in-process gRPC connection, through memory, not the network.
	inproc := bufconn.Listen(1 << 20)
	conn, err := grpc.NewClient("passthrough:///inprocess",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(gatewayMaxResponseBytes)),
		s.traceDialOption(),
	)
	if err != nil {
		return fmt.Errorf("gateway connection: %w", err)
	}
	defer conn.Close()
	handler, err := s.httpHandler(ctx, conn)
	if err != nil {
		return err
	}
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: httpReadHeaderTimeout, IdleTimeout: httpIdleTimeout, TLSConfig: s.tls}

	s.mu.Lock()
	s.grpcAddr, s.httpAddr = grpcLis.Addr(), httpLis.Addr()
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "tls", s.tls != nil)
	if len(s.keys) == 0 {
		s.log.Warn("NO API KEYS CONFIGURED: every caller is allowed. Set PIPELINE_API_KEYS for anything but local development.")
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.grpc.Serve(grpcLis) })
	g.Go(func() error { return s.grpc.Serve(inproc) })
	g.Go(func() error {
		serve := s.http.Serve
		if s.tls != nil {
			// ServeTLS uses TLSConfig's certificate and adds HTTP/2 by ALPN.
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") }
		}
		if err := serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return s.deps.Bus.Run(gctx) })
	g.Go(func() error { s.watchHealth(gctx); return nil })
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	err = g.Wait()
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

func (s *Server) shutdown() {
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	close(s.stopping)
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		<-ctx.Done()
		s.grpc.Stop() // the deadline passed: cut what is left
	}()
	_ = s.http.Shutdown(ctx)
	s.grpc.GracefulStop()
	// Reports answered before the stop may still owe Redis their status cache and events.
	if err := s.workers.recorder().Flush(ctx); err != nil {
		s.log.Warn("shutting down: report notices not all sent", "err", err)
	}
}

func (s *Server) httpHandler(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		runtime.WithErrorHandler(s.gatewayError),
		runtime.WithMiddlewares(gatewayRoute),
	)
	gc := &gatewayConn{
		methods: s.unary, chain: s.chain, streams: conn,
		maxRequest: s.maxMessageBytes, maxResponse: gatewayMaxResponseBytes,
		clientStats: s.clientStats, serverStats: s.serverStats,
	}
	for name, err := range map[string]error{
		"JobService":     pipelinev1.RegisterJobServiceHandlerClient(ctx, gw, pipelinev1.NewJobServiceClient(gc)),
		"ContentService": pipelinev1.RegisterContentServiceHandlerClient(ctx, gw, pipelinev1.NewContentServiceClient(gc)),
		"SearchService":  pipelinev1.RegisterSearchServiceHandlerClient(ctx, gw, pipelinev1.NewSearchServiceClient(gc)),
		"SystemService":  pipelinev1.RegisterSystemServiceHandlerClient(ctx, gw, pipelinev1.NewSystemServiceClient(gc)),
	} {
		if err != nil {
			return nil, fmt.Errorf("register %s gateway: %w", name, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document)
	})
	if s.deps.Gatherer != nil {
		// Open like /healthz: scrapers carry no API key, and metrics hold no secrets.
		mux.Handle("GET /metrics", metrics.Handler(s.deps.Gatherer))
	}
	// The webhook is outside key auth (Firecrawl signs it) and has its own body limit.
	mux.HandleFunc("POST /v1/webhooks/firecrawl", s.firecrawlWebhook)
	// The REST gateway under /v1/, with the web console's files (console.go) at / in front of it.
	mux.Handle("/", withConsole(limitBody(gw, int64(s.maxMessageBytes))))
	return s.observeHTTP(mux), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// version is the binary's version for callers to see.
func (s *Server) version() string {
	if s.deps.Version == "" {
		return "unknown"
	}
	return s.deps.Version
}

// firecrawlWebhook takes Firecrawl's crawl events. It sits beside the gateway, not behind it:
// Firecrawl authenticates with an HMAC signature of the raw body, not an API key.
func (s *Server) firecrawlWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Crawls == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no crawler configured"})
		return
	}
	body, err := firecrawl.ReadBody(r.Body)
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
		return
	}
	err = s.deps.Crawls.HandleWebhook(r.Context(), body, r.Header.Get("X-Firecrawl-Signature"))
	var we *crawling.WebhookError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case errors.As(err, &we):
		s.log.WarnContext(r.Context(), "firecrawl webhook refused", "status", we.Status, "err", we.Err)
		writeJSON(w, we.Status, map[string]string{"error": we.Err.Error()})
	default:
		// Unexpected (Postgres away): 5xx, so Firecrawl delivers again later.
		s.log.ErrorContext(r.Context(), "firecrawl webhook", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily unavailable; deliver again"})
	}
}

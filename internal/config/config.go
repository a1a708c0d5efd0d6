// Package config holds the one configuration struct of the pipeline binary: its documented
// defaults, how environment variables (PIPELINE_*) and command-line flags map onto it, and its
// validation. It knows nothing about what the settings drive.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is every setting of the server. Each field says its default; env names are PIPELINE_
// followed by the flag name in upper case with dashes as underscores.
type Config struct {
	// DatabaseURL is the Postgres connection URL. Defaults to the local Postgres, database postgres.
	DatabaseURL string
	// RedisURL is the Redis connection URL. Defaults to redis://127.0.0.1:6379/0.
	RedisURL string
	// RedisPrefix is put before every Redis key and channel the service uses, so several
	// deployments (or tests) can share one Redis. Defaults to "".
	RedisPrefix string
	// GRPCAddr is where the gRPC API listens. Defaults to 127.0.0.1:9090.
	GRPCAddr string
	// HTTPAddr is where the REST gateway, health and OpenAPI document listen. Defaults to 127.0.0.1:8080.
	HTTPAddr string
	// APIKeys are the accepted bearer tokens, each entry KEY[:SCOPES] or sha256:HEX[:SCOPES]:
	// KEY is the key itself (at least 16 characters, no ':' or ','); HEX is the SHA-256 of the
	// key in hex (`printf %s KEY | sha256sum`), so the configuration need not hold the key;
	// SCOPES are read, write and worker joined by '+' (admin or all = all three) and default to
	// read+write. Several entries may be valid at once (rotation). Empty means no authentication
	// (development only; the server warns at start). Defaults to none.
	APIKeys []string
	// Migrate applies pending database migrations when the server starts. Defaults to true.
	Migrate bool
	// LogLevel is debug, info, warn or error. Defaults to info.
	LogLevel string
	// LogFormat is text or json. Defaults to text.
	LogFormat string
	// ShutdownTimeout bounds graceful shutdown on SIGINT/SIGTERM. Defaults to 15s.
	ShutdownTimeout time.Duration
	// JobTimeout is how long a job may stay active before it is failed. Defaults to 1h.
	JobTimeout time.Duration
	// WatchPollInterval is how often a WatchJob stream re-reads its job from Postgres even when no
	// change event arrived, so a lost event delays a watcher but never stalls it. Defaults to 5s.
	WatchPollInterval time.Duration

	// TLS of the API. Postgres, Redis and Milvus take theirs from their own settings:
	// PIPELINE_DATABASE_URL with sslmode=verify-full (and sslrootcert=), PIPELINE_REDIS_URL with
	// rediss://, PIPELINE_MILVUS_ADDR with https://.

	// TLSCertFile is the PEM certificate (chain) the gRPC and HTTP listeners serve TLS with; set
	// with TLSKeyFile, or neither for plaintext. In-process workers (`dev`, `serve --workers=1`)
	// dial the gRPC address (usually 127.0.0.1) and trust TLSCAFile, or this certificate itself
	// when TLSCAFile is empty, so it must then be valid for that address. Defaults to none.
	TLSCertFile string
	// TLSKeyFile is the PEM private key of TLSCertFile. Defaults to none.
	TLSKeyFile string
	// TLSCAFile is the PEM file of the CAs a worker trusts when it dials the server; setting it
	// turns TLS on for `pipeline worker`. Defaults to none: plaintext, or, for in-process
	// workers of a TLS server, TLSCertFile.
	TLSCAFile string

	// Limits of the API.

	// MaxMessageBytes is the largest gRPC message and REST request body the server accepts;
	// larger ones get ResourceExhausted (HTTP 413). Defaults to 32 MiB.
	MaxMessageBytes int
	// RPCTimeout is the deadline of a unary call whose client sent none. Streams have none.
	// Defaults to 60s.
	RPCTimeout time.Duration
	// RateLimit is how many calls per second one API key (or, without keys, one client IP) may
	// make; a stream counts once, when it opens. Over it, calls get ResourceExhausted (HTTP 429).
	// Defaults to 0: no limit.
	RateLimit float64
	// RateBurst is how many calls above RateLimit one key may make at once. Defaults to 0:
	// twice RateLimit (at least 1).
	RateBurst int

	// Processing settings (the spec's ProcessingConfig), all used.

	// PollInterval is how often the server's reconciler looks for lost messages, expired leases,
	// timed-out and stranded jobs. Defaults to 30s.
	PollInterval time.Duration
	// BatchSize is the most documents in one batch (one queue message). Defaults to 100.
	BatchSize int
	// MaxRetries is how often a transient failure of one document's step (embed, store) is
	// retried before the document fails. Defaults to 3.
	MaxRetries int
	// BackoffFactor multiplies the wait between retries (with jitter). Defaults to 1.5.
	BackoffFactor float64
	// RetryBaseDelay is the wait before the first retry. Defaults to 500ms.
	RetryBaseDelay time.Duration
	// MaxConcurrentJobs is how many batches one worker process works on at once. Defaults to 5.
	MaxConcurrentJobs int
	// ExpressMaxDocuments: a job of at most this many documents (and fewer than BatchSize, so
	// one batch) goes to the queue's express lane, whose slots bulk batches never take, so a
	// small upload is searchable without waiting behind big jobs. 0 turns the lane off.
	// Defaults to 10.
	ExpressMaxDocuments int
	// ExpressConcurrency is how many of a worker process's MaxConcurrentJobs slots serve only
	// the express lane; the others, at least one, serve the bulk lane. Defaults to 1.
	ExpressConcurrency int
	// Lease is how long a worker holds a batch without reporting before another may take it.
	// Workers report at least every Lease/3. Defaults to 2m.
	Lease time.Duration
	// ResultTTL is how long processing:result:{job_id} summaries stay in Redis. Defaults to 24h.
	ResultTTL time.Duration
	// Workers is how many in-process worker pools `serve` runs (0 or 1; `dev` runs one).
	// Defaults to 0: workers run as `pipeline worker` processes.
	Workers int

	// Chunking and embedding.

	// ChunkMaxTokens is the most tokens in one chunk. Defaults to 512.
	ChunkMaxTokens int
	// ChunkOverlapTokens is how many tokens consecutive chunks share. Defaults to 64.
	ChunkOverlapTokens int
	// Embedder is hash (built in, offline, lexical) or openai (any OpenAI-compatible
	// /v1/embeddings server). Defaults to hash.
	Embedder string
	// EmbedDimension is the vector length. Defaults to 384; for openai, set the model's.
	EmbedDimension int
	// EmbedBatchSize is how many chunks go to the embedder in one call. Defaults to 64.
	EmbedBatchSize int
	// OpenAIBaseURL is the embeddings server's base URL (without /v1). Defaults to https://api.openai.com.
	OpenAIBaseURL string
	// OpenAIModel is the embedding model. Defaults to text-embedding-3-small.
	OpenAIModel string
	// OpenAIAPIKey is the embeddings server's key. Defaults to none.
	OpenAIAPIKey string

	// Vector store.

	// VectorStore is embedded (in-process, under DataDir) or milvus. Defaults to embedded.
	VectorStore string
	// DataDir holds the embedded vector store. Defaults to ./pipeline-data.
	DataDir string
	// MilvusAddr is Milvus's address (host:port). Defaults to 127.0.0.1:19530.
	MilvusAddr string
	// MilvusCollection is the collection holding the chunks. Defaults to pipeline_chunks.
	MilvusCollection string
	// MilvusToken is Milvus's API key or "user:password". Defaults to none.
	MilvusToken string

	// MaxBacklogBatches is how many batches may be queued or running before IngestDocuments
	// refuses more work with RESOURCE_EXHAUSTED (backpressure instead of an unbounded queue).
	// Defaults to 20000 (2 million documents at the default batch size).
	MaxBacklogBatches int
	// MaxActiveCrawls is how many crawls may run at once before CreateSource/RefreshSource of a
	// web source answer RESOURCE_EXHAUSTED. Defaults to 8.
	MaxActiveCrawls int

	// Crawling (the built-in crawler).

	// CrawlAllowLoopback lets the crawler fetch loopback addresses (127.0.0.0/8, ::1). Defaults
	// to false; `pipeline dev` turns it on so a local site can be crawled.
	CrawlAllowLoopback bool
	// CrawlAllowPrivate lets the crawler fetch private network addresses. Defaults to false.
	// Link-local addresses (cloud metadata) are always refused.
	CrawlAllowPrivate bool
	// CrawlConcurrency is how many pages the crawler fetches at once. Defaults to 4.
	CrawlConcurrency int
	// CrawlDelay is the least time between two requests to one host. Defaults to 250ms.
	CrawlDelay time.Duration

	// Firecrawl (sources created with crawler FIRECRAWL).

	// FirecrawlAPIURL is Firecrawl's base URL (hosted or self-hosted). Firecrawl sources are
	// refused while it is empty. Defaults to none.
	FirecrawlAPIURL string
	// FirecrawlAPIKey is Firecrawl's API key. Defaults to none.
	FirecrawlAPIKey string
	// FirecrawlWebhookSecret verifies the signature of Firecrawl's webhook deliveries. Required
	// with FirecrawlAPIURL.
	FirecrawlWebhookSecret string
	// PublicURL is where Firecrawl reaches this server's HTTP port (scheme://host[:port]); the
	// webhook is PublicURL/v1/webhooks/firecrawl. Required with FirecrawlAPIURL.
	PublicURL string

	// Observability (docs/architecture.md lists the metrics; docs/decisions/0009).

	// MetricsAddr is where `pipeline worker` serves GET /metrics (host:port). `serve` and `dev`
	// serve /metrics on the HTTP port instead, for the whole process (its in-process workers
	// too). Defaults to none: a worker process serves no metrics.
	MetricsAddr string
	// OTLPEndpoint is the OpenTelemetry collector spans are exported to: host:port, or an
	// http(s):// URL. Defaults to none: tracing is off (a no-op tracer, nothing sent).
	OTLPEndpoint string
	// OTLPProtocol is grpc (OTLP/gRPC, port 4317 by convention) or http (OTLP/HTTP protobuf,
	// 4318). Defaults to grpc.
	OTLPProtocol string
	// OTLPInsecure sends spans without TLS to a host:port endpoint (a URL's scheme decides for
	// itself). Defaults to false: TLS.
	OTLPInsecure bool
	// OTLPCAFile is a PEM file of the CAs trusted for the collector's certificate. Defaults to
	// none: the system's roots.
	OTLPCAFile string
	// OTLPHeaders are KEY=VALUE headers sent with every export (a hosted collector's key).
	// Defaults to none.
	OTLPHeaders []string
	// TraceSampleRatio is the share of new traces recorded, 0 to 1; a trace continued from a
	// caller's traceparent follows the caller's decision. Defaults to 1: every trace.
	TraceSampleRatio float64

	// Worker side.

	// Server is the gRPC address `pipeline worker` reports to. Defaults to 127.0.0.1:9090.
	Server string
	// WorkerAPIKey is the key `pipeline worker` sends to the server. Defaults to none.
	WorkerAPIKey string
	// WorkerHeartbeat is how often each worker process (`worker`, and the workers of `dev`)
	// writes its record to the worker registry in Redis; a record expires three heartbeats after
	// its last write, so a dead worker leaves SystemService.ListWorkers within that time.
	// Defaults to 5s.
	WorkerHeartbeat time.Duration
}

// Default returns the configuration with every default filled in; it works on a machine with
// Postgres and Redis on their standard local ports.
func Default() Config {
	return Config{
		DatabaseURL:       "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		RedisURL:          "redis://127.0.0.1:6379/0",
		GRPCAddr:          "127.0.0.1:9090",
		HTTPAddr:          "127.0.0.1:8080",
		Migrate:           true,
		LogLevel:          "info",
		LogFormat:         "text",
		ShutdownTimeout:   15 * time.Second,
		JobTimeout:        time.Hour,
		WatchPollInterval: 5 * time.Second,
		MaxMessageBytes:   32 << 20,
		RPCTimeout:        60 * time.Second,

		PollInterval:        30 * time.Second,
		BatchSize:           100,
		MaxRetries:          3,
		BackoffFactor:       1.5,
		RetryBaseDelay:      500 * time.Millisecond,
		MaxConcurrentJobs:   5,
		ExpressMaxDocuments: 10,
		ExpressConcurrency:  1,
		Lease:               2 * time.Minute,
		ResultTTL:           24 * time.Hour,

		ChunkMaxTokens:     512,
		ChunkOverlapTokens: 64,
		Embedder:           "hash",
		EmbedDimension:     384,
		EmbedBatchSize:     64,
		OpenAIBaseURL:      "https://api.openai.com",
		OpenAIModel:        "text-embedding-3-small",

		VectorStore:      "embedded",
		DataDir:          "./pipeline-data",
		MilvusAddr:       "127.0.0.1:19530",
		MilvusCollection: "pipeline_chunks",

		OTLPProtocol:     "grpc",
		TraceSampleRatio: 1,

		MaxBacklogBatches: 20000,
		MaxActiveCrawls:   8,
		CrawlConcurrency:  4,
		CrawlDelay:        250 * time.Millisecond,

		Server:          "127.0.0.1:9090",
		WorkerHeartbeat: 5 * time.Second,
	}
}

// setting ties one field to its flag and environment variable.
type setting struct {
	flag  string
	usage string
	ptr   any
	// secret settings never show their value in help output (it may come from the environment).
	secret bool
}

func (c *Config) settings() []setting {
	return []setting{
		{"database-url", "Postgres connection URL", &c.DatabaseURL, true},
		{"redis-url", "Redis connection URL", &c.RedisURL, true},
		{"redis-prefix", "prefix of every Redis key and channel", &c.RedisPrefix, false},
		{"grpc-addr", "gRPC listen address", &c.GRPCAddr, false},
		{"http-addr", "REST/health listen address", &c.HTTPAddr, false},
		{"api-keys", "accepted API keys, comma-separated, each KEY[:SCOPES] or sha256:HEX[:SCOPES] (HEX from: printf %s KEY | sha256sum); SCOPES are read, write, worker or admin joined by + (default read+write); none = no auth (dev only)", &c.APIKeys, true},
		{"migrate", "apply database migrations at start", &c.Migrate, false},
		{"log-level", "debug, info, warn or error", &c.LogLevel, false},
		{"log-format", "text or json", &c.LogFormat, false},
		{"shutdown-timeout", "graceful shutdown limit", &c.ShutdownTimeout, false},
		{"job-timeout", "how long a job may stay active before it fails", &c.JobTimeout, false},
		{"watch-poll-interval", "how often WatchJob re-reads a job without an event", &c.WatchPollInterval, false},
		{"tls-cert-file", "PEM certificate for TLS on the gRPC and HTTP ports (with --tls-key-file)", &c.TLSCertFile, false},
		{"tls-key-file", "PEM private key of --tls-cert-file", &c.TLSKeyFile, false},
		{"tls-ca-file", "PEM CAs a worker trusts when dialling the server; turns TLS on for workers", &c.TLSCAFile, false},
		{"max-message-bytes", "largest gRPC message or REST body accepted", &c.MaxMessageBytes, false},
		{"rpc-timeout", "deadline of a unary call that came without one", &c.RPCTimeout, false},
		{"rate-limit", "calls per second per API key (or client IP without keys); 0 = no limit", &c.RateLimit, false},
		{"rate-burst", "calls above the rate allowed at once; 0 = twice the rate", &c.RateBurst, false},
		{"poll-interval", "how often the reconciler runs", &c.PollInterval, false},
		{"batch-size", "documents per batch (queue message)", &c.BatchSize, false},
		{"max-retries", "retries of a transient failure per document step", &c.MaxRetries, false},
		{"backoff-factor", "growth of the wait between retries", &c.BackoffFactor, false},
		{"retry-base-delay", "wait before the first retry", &c.RetryBaseDelay, false},
		{"max-concurrent-jobs", "batches one worker process works on at once", &c.MaxConcurrentJobs, false},
		{"express-max-documents", "jobs of at most this many documents take the express lane (0 = no lane)", &c.ExpressMaxDocuments, false},
		{"express-concurrency", "slots of max-concurrent-jobs kept for the express lane (at least one stays for bulk)", &c.ExpressConcurrency, false},
		{"lease", "how long a silent worker keeps a batch", &c.Lease, false},
		{"result-ttl", "lifetime of processing:result:{job_id} in Redis", &c.ResultTTL, false},
		{"workers", "in-process worker pools for serve (0 or 1)", &c.Workers, false},
		{"chunk-max-tokens", "most tokens per chunk", &c.ChunkMaxTokens, false},
		{"chunk-overlap-tokens", "tokens shared by consecutive chunks", &c.ChunkOverlapTokens, false},
		{"embedder", "hash or openai", &c.Embedder, false},
		{"embed-dimension", "vector length", &c.EmbedDimension, false},
		{"embed-batch-size", "chunks per embedder call", &c.EmbedBatchSize, false},
		{"openai-base-url", "OpenAI-compatible embeddings server", &c.OpenAIBaseURL, false},
		{"openai-model", "embedding model", &c.OpenAIModel, false},
		{"openai-api-key", "embeddings server key", &c.OpenAIAPIKey, true},
		{"vector-store", "embedded or milvus", &c.VectorStore, false},
		{"data-dir", "directory of the embedded vector store", &c.DataDir, false},
		{"milvus-addr", "Milvus host:port", &c.MilvusAddr, false},
		{"milvus-collection", "Milvus collection", &c.MilvusCollection, false},
		{"milvus-token", "Milvus API key or user:password", &c.MilvusToken, true},
		{"max-backlog-batches", "batches queued or running before uploads are refused", &c.MaxBacklogBatches, false},
		{"max-active-crawls", "crawls running at once before new ones are refused", &c.MaxActiveCrawls, false},
		{"crawl-allow-loopback", "let the crawler fetch loopback addresses", &c.CrawlAllowLoopback, false},
		{"crawl-allow-private", "let the crawler fetch private network addresses", &c.CrawlAllowPrivate, false},
		{"crawl-concurrency", "pages fetched at once by the crawler", &c.CrawlConcurrency, false},
		{"crawl-delay", "least time between requests to one host", &c.CrawlDelay, false},
		{"firecrawl-api-url", "Firecrawl base URL; empty disables Firecrawl sources", &c.FirecrawlAPIURL, false},
		{"firecrawl-api-key", "Firecrawl API key", &c.FirecrawlAPIKey, true},
		{"firecrawl-webhook-secret", "secret that signs Firecrawl webhooks", &c.FirecrawlWebhookSecret, true},
		{"public-url", "URL at which Firecrawl reaches this server's HTTP port", &c.PublicURL, false},
		{"metrics-addr", "where `pipeline worker` serves /metrics (serve and dev use the HTTP port); empty = none", &c.MetricsAddr, false},
		{"otlp-endpoint", "OpenTelemetry collector for traces, host:port or http(s) URL; empty = tracing off", &c.OTLPEndpoint, false},
		{"otlp-protocol", "grpc or http (OTLP/HTTP protobuf)", &c.OTLPProtocol, false},
		{"otlp-insecure", "export spans without TLS to a host:port endpoint", &c.OTLPInsecure, false},
		{"otlp-ca-file", "PEM CAs trusted for the collector's certificate", &c.OTLPCAFile, false},
		{"otlp-headers", "KEY=VALUE headers sent with every span export, comma-separated", &c.OTLPHeaders, true},
		{"trace-sample-ratio", "share of new traces recorded, 0 to 1", &c.TraceSampleRatio, false},
		{"server", "gRPC address a worker reports to", &c.Server, false},
		{"worker-api-key", "API key a worker sends", &c.WorkerAPIKey, true},
		{"worker-heartbeat", "how often a worker writes its registry record (it expires after three)", &c.WorkerHeartbeat, false},
	}
}

// EnvName is the environment variable of a flag.
func EnvName(flag string) string {
	return "PIPELINE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// LoadEnv overrides fields from PIPELINE_* variables found by lookup (os.LookupEnv in production).
// A value that does not parse is an error naming the variable.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	for _, s := range c.settings() {
		name := EnvName(s.flag)
		v, ok := lookup(name)
		if !ok {
			continue
		}
		if err := set(s.ptr, v); err != nil {
			if s.secret {
				return fmt.Errorf("%s: %w", name, err) // never echo a secret
			}
			return fmt.Errorf("%s=%q: %w", name, v, err)
		}
	}
	return nil
}

// RegisterFlags adds a flag per field to fs, with the field's current value as its default, so
// the order default < environment < flag holds when LoadEnv ran first.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	for _, s := range c.settings() {
		usage := fmt.Sprintf("%s (env %s)", s.usage, EnvName(s.flag))
		switch p := s.ptr.(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, usage)
		case *bool:
			fs.BoolVar(p, s.flag, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, s.flag, *p, usage)
		case *[]string:
			fs.StringSliceVar(p, s.flag, *p, usage)
		case *int:
			fs.IntVar(p, s.flag, *p, usage)
		case *float64:
			fs.Float64Var(p, s.flag, *p, usage)
		}
		if s.secret { // help must not print a secret taken from the environment
			f := fs.Lookup(s.flag)
			f.DefValue = ""
			if _, ok := s.ptr.(*[]string); ok {
				f.DefValue = "[]" // pflag's zero value for lists, so help prints no default
			}
		}
	}
}

func set(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 30s or 1h")
		}
		*p = d
	case *[]string:
		*p = splitList(v)
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want a whole number")
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("want a number")
		}
		*p = f
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Load builds the configuration from defaults and the process environment.
func Load() (Config, error) {
	c := Default()
	err := c.LoadEnv(os.LookupEnv)
	return c, err
}

// Validate checks every field and names the first bad one by its environment variable.
func (c *Config) Validate() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("%s: %s", EnvName(flag), fmt.Sprintf(format, args...))
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return bad("database-url", "want a postgres:// URL")
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return bad("redis-url", "want a redis:// or rediss:// URL")
	}
	for flag, addr := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return bad(flag, "want host:port, got %q", addr)
		}
	}
	if c.GRPCAddr == c.HTTPAddr {
		return bad("http-addr", "must differ from %s", EnvName("grpc-addr"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%s and %s: set both or neither", EnvName("tls-cert-file"), EnvName("tls-key-file"))
	}
	if _, err := c.ParseAPIKeys(); err != nil {
		return err
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return bad("log-level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log-format", "want text or json, got %q", c.LogFormat)
	}
	for flag, d := range map[string]time.Duration{
		"shutdown-timeout":    c.ShutdownTimeout,
		"job-timeout":         c.JobTimeout,
		"watch-poll-interval": c.WatchPollInterval,
		"poll-interval":       c.PollInterval,
		"retry-base-delay":    c.RetryBaseDelay,
		"result-ttl":          c.ResultTTL,
		"rpc-timeout":         c.RPCTimeout,
	} {
		if d <= 0 {
			return bad(flag, "must be positive, got %s", d)
		}
	}
	if c.CrawlDelay < 0 {
		return bad("crawl-delay", "must not be negative, got %s", c.CrawlDelay)
	}
	if c.WorkerHeartbeat < 100*time.Millisecond || c.WorkerHeartbeat > 10*time.Minute {
		return bad("worker-heartbeat", "must be between 100ms and 10m, got %s", c.WorkerHeartbeat)
	}
	if c.Lease < time.Second {
		return bad("lease", "must be at least 1s, got %s", c.Lease)
	}
	for _, r := range []struct {
		flag     string
		v        int
		min, max int
	}{
		{"batch-size", c.BatchSize, 1, 10000},
		{"max-retries", c.MaxRetries, 0, 100},
		{"max-concurrent-jobs", c.MaxConcurrentJobs, 1, 1000},
		{"express-max-documents", c.ExpressMaxDocuments, 0, 10000},
		{"express-concurrency", c.ExpressConcurrency, 1, 1000},
		{"workers", c.Workers, 0, 1},
		{"chunk-max-tokens", c.ChunkMaxTokens, 16, 8192},
		{"chunk-overlap-tokens", c.ChunkOverlapTokens, 0, c.ChunkMaxTokens / 2},
		{"embed-dimension", c.EmbedDimension, 8, 8192},
		{"embed-batch-size", c.EmbedBatchSize, 1, 2048},
		{"crawl-concurrency", c.CrawlConcurrency, 1, 64},
		{"max-backlog-batches", c.MaxBacklogBatches, 1, 100_000_000},
		{"max-active-crawls", c.MaxActiveCrawls, 1, 10_000},
		{"max-message-bytes", c.MaxMessageBytes, 64 << 10, 1 << 30},
		{"rate-burst", c.RateBurst, 0, 1_000_000},
	} {
		if r.v < r.min || r.v > r.max {
			return bad(r.flag, "must be between %d and %d, got %d", r.min, r.max, r.v)
		}
	}
	if c.RateLimit < 0 || c.RateLimit > 1_000_000 {
		return bad("rate-limit", "must be between 0 (no limit) and 1000000, got %g", c.RateLimit)
	}
	if c.BackoffFactor < 1 || c.BackoffFactor > 10 {
		return bad("backoff-factor", "must be between 1 and 10, got %g", c.BackoffFactor)
	}
	switch c.Embedder {
	case "hash":
	case "openai":
		if u, err := url.Parse(c.OpenAIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("openai-base-url", "want an http(s) URL, got %s", showURL(c.OpenAIBaseURL))
		}
		if c.OpenAIModel == "" {
			return bad("openai-model", "required with PIPELINE_EMBEDDER=openai")
		}
	default:
		return bad("embedder", "want hash or openai, got %q", c.Embedder)
	}
	switch c.VectorStore {
	case "embedded":
		if c.DataDir == "" {
			return bad("data-dir", "required with PIPELINE_VECTOR_STORE=embedded")
		}
	case "milvus":
		if _, _, err := net.SplitHostPort(c.MilvusAddr); err != nil {
			return bad("milvus-addr", "want host:port, got %q", c.MilvusAddr)
		}
		if c.MilvusCollection == "" {
			return bad("milvus-collection", "required with PIPELINE_VECTOR_STORE=milvus")
		}
	default:
		return bad("vector-store", "want embedded or milvus, got %q", c.VectorStore)
	}
	if c.FirecrawlAPIURL != "" {
		if u, err := url.Parse(c.FirecrawlAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("firecrawl-api-url", "want an http(s) URL, got %s", showURL(c.FirecrawlAPIURL))
		}
		if len(c.FirecrawlWebhookSecret) < 16 {
			return bad("firecrawl-webhook-secret", "required with PIPELINE_FIRECRAWL_API_URL, at least 16 characters")
		}
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("public-url", "required with PIPELINE_FIRECRAWL_API_URL: the http(s) URL Firecrawl reaches this server at")
		}
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			return bad("metrics-addr", "want host:port, got %q", c.MetricsAddr)
		}
	}
	if c.OTLPEndpoint != "" {
		if strings.Contains(c.OTLPEndpoint, "://") {
			if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad("otlp-endpoint", "want host:port or an http(s) URL, got %s", showURL(c.OTLPEndpoint))
			}
		} else if _, port, err := net.SplitHostPort(c.OTLPEndpoint); err != nil || port == "" {
			return bad("otlp-endpoint", "want host:port or an http(s) URL, got %q", c.OTLPEndpoint)
		}
	}
	if c.OTLPProtocol != "grpc" && c.OTLPProtocol != "http" {
		return bad("otlp-protocol", "want grpc or http, got %q", c.OTLPProtocol)
	}
	if _, err := c.ParseOTLPHeaders(); err != nil {
		return err
	}
	if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 {
		return bad("trace-sample-ratio", "must be between 0 and 1, got %g", c.TraceSampleRatio)
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return bad("server", "want host:port, got %q", c.Server)
	}
	return nil
}

// ParseOTLPHeaders parses OTLPHeaders. An error names the entry by position, never its value
// (it may be a key).
func (c *Config) ParseOTLPHeaders() (map[string]string, error) {
	if len(c.OTLPHeaders) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(c.OTLPHeaders))
	for i, h := range c.OTLPHeaders {
		k, v, ok := strings.Cut(h, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("%s: entry %d: want KEY=VALUE", EnvName("otlp-headers"), i+1)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// showURL quotes a URL for an error message with any password replaced, and shows nothing of
// one that does not parse, since it may hold credentials in a shape url.Parse rejects.
func showURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return strconv.Quote(u.Redacted())
}

// Scopes of an API key: what its holder may call.
const (
	// ScopeRead lets a key read jobs, sources, documents and search.
	ScopeRead = "read"
	// ScopeWrite lets a key create, change and delete sources, ingest, cancel and retry jobs.
	ScopeWrite = "write"
	// ScopeWorker lets a key report workers' progress (WorkerService), and nothing else.
	ScopeWorker = "worker"
)

// APIKey is one parsed PIPELINE_API_KEYS entry. It holds the key's SHA-256, never the key.
type APIKey struct {
	Digest [sha256.Size]byte
	// Scopes are among ScopeRead, ScopeWrite and ScopeWorker, in that order, never empty.
	Scopes []string
}

// hashedKeyPrefix starts an entry that gives the key's SHA-256 instead of the key.
const hashedKeyPrefix = "sha256:"

var errBadDigest = errors.New("after sha256: want the key's SHA-256 as 64 hex digits (printf %s KEY | sha256sum)")

// minKeyLength is the shortest raw key accepted: shorter ones are guessable.
const minKeyLength = 16

// ParseAPIKeys parses APIKeys. An error names PIPELINE_API_KEYS and the entry by position, and
// never contains any part of an entry, since that may be a key.
func (c *Config) ParseAPIKeys() ([]APIKey, error) {
	out := make([]APIKey, 0, len(c.APIKeys))
	seen := make(map[[sha256.Size]byte]int, len(c.APIKeys))
	for i, entry := range c.APIKeys {
		k, err := ParseAPIKey(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", EnvName("api-keys"), i+1, err)
		}
		if j, dup := seen[k.Digest]; dup {
			return nil, fmt.Errorf("%s: entry %d is the same key as entry %d", EnvName("api-keys"), i+1, j+1)
		}
		seen[k.Digest] = i
		out = append(out, k)
	}
	return out, nil
}

// ParseAPIKey parses one entry: KEY[:SCOPES] or sha256:HEX[:SCOPES] (see Config.APIKeys). Its
// errors never contain any part of the entry.
func ParseAPIKey(entry string) (APIKey, error) {
	var k APIKey
	var scopes string
	var hasScopes bool
	if rest, ok := strings.CutPrefix(entry, hashedKeyPrefix); ok {
		var hexDigest string
		hexDigest, scopes, hasScopes = strings.Cut(rest, ":")
		if len(hexDigest) != hex.EncodedLen(sha256.Size) {
			return APIKey{}, errBadDigest
		}
		if _, err := hex.Decode(k.Digest[:], []byte(hexDigest)); err != nil {
			return APIKey{}, errBadDigest
		}
	} else {
		var key string
		key, scopes, hasScopes = strings.Cut(entry, ":")
		if len(key) < minKeyLength {
			return APIKey{}, fmt.Errorf("key is shorter than %d characters", minKeyLength)
		}
		k.Digest = sha256.Sum256([]byte(key))
	}
	if !hasScopes {
		k.Scopes = []string{ScopeRead, ScopeWrite}
		return k, nil
	}
	set := map[string]bool{}
	for _, name := range strings.Split(scopes, "+") {
		switch strings.ToLower(name) {
		case ScopeRead, ScopeWrite, ScopeWorker:
			set[strings.ToLower(name)] = true
		case "admin", "all":
			set[ScopeRead], set[ScopeWrite], set[ScopeWorker] = true, true, true
		default:
			// The text after ':' is not echoed: in a mistyped entry it may be part of a key.
			return APIKey{}, errors.New("after ':' want scopes read, write, worker or admin joined by '+' (keys may not contain ':')")
		}
	}
	for _, name := range []string{ScopeRead, ScopeWrite, ScopeWorker} {
		if set[name] {
			k.Scopes = append(k.Scopes, name)
		}
	}
	return k, nil
}

// ParseLogLevel maps debug|info|warn|error to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

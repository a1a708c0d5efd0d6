// Package config holds the one configuration struct of the pipeline binary: its documented
// defaults, how environment variables (PIPELINE_*) and command-line flags map onto it, and its
// validation. It knows nothing about what the settings drive.
package config

import (
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
	// APIKeys are the accepted bearer tokens. Empty means no authentication (development only; the
	// server warns at start). Defaults to none.
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
		{"api-keys", "accepted API keys, comma-separated; none = no auth (dev only)", &c.APIKeys, true},
		{"migrate", "apply database migrations at start", &c.Migrate, false},
		{"log-level", "debug, info, warn or error", &c.LogLevel, false},
		{"log-format", "text or json", &c.LogFormat, false},
		{"shutdown-timeout", "graceful shutdown limit", &c.ShutdownTimeout, false},
		{"job-timeout", "how long a job may stay active before it fails", &c.JobTimeout, false},
		{"watch-poll-interval", "how often WatchJob re-reads a job without an event", &c.WatchPollInterval, false},
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
		}
		if s.secret {
			fs.Lookup(s.flag).DefValue = "" // help must not print a secret taken from the environment
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
	for i, k := range c.APIKeys {
		if len(k) < 16 {
			return bad("api-keys", "key %d is shorter than 16 characters", i+1)
		}
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
	} {
		if d <= 0 {
			return bad(flag, "must be positive, got %s", d)
		}
	}
	return nil
}

// ParseLogLevel maps debug|info|warn|error to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

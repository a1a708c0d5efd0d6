package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/server"
)

// Where the cases that need a running service find Postgres and Redis: the same variables and
// defaults as the project's tests (internal/db/dbtest, internal/redistest).
func benchDatabaseURL() string {
	if u := os.Getenv("PIPELINE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func benchRedisURL() string {
	if u := os.Getenv("PIPELINE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// liveServer is a real pipeline server started in this process (app.Build and server.New, the
// path cmd/pipeline takes) on a Postgres schema and a Redis key prefix of its own, both removed
// by Close. No workers, reconciler or crawl runner run: a case drives the work itself.
type liveServer struct {
	Addr, HTTPAddr string
	Deps           server.Deps
	Conn           *grpc.ClientConn // a gRPC client connection to Addr
	Redis          *redis.Client    // on the same Redis, for peers
	Prefix         string           // the server's Redis prefix; peers' keys go under it too

	schema  string
	app     *app.App
	stop    context.CancelFunc
	runErr  chan error
	cleanup []func()
}

// startServer starts a server whose configuration adjust may change (after the bench's own
// settings: schema, prefix, loopback addresses, data under dir).
func startServer(ctx context.Context, dir string, adjust func(*config.Config)) (*liveServer, error) {
	return startServerWith(ctx, dir, adjust, app.Options{})
}

// startServerWith is startServer with collaborators for app.BuildWith (statement counters).
func startServerWith(ctx context.Context, dir string, adjust func(*config.Config), opts app.Options) (s *liveServer, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s = &liveServer{schema: "bench_" + id, Prefix: "bench:" + id + ":"}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()

	if err := holdRunLock(ctx); err != nil {
		return s, err
	}
	admin, err := pgx.Connect(ctx, benchDatabaseURL())
	if err != nil {
		return s, fmt.Errorf("connect to Postgres at %s: %w", benchDatabaseURL(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+s.schema); err != nil {
		return s, fmt.Errorf("create schema: %w", err)
	}
	s.cleanup = append(s.cleanup, s.dropSchema)

	opt, err := redis.ParseURL(benchRedisURL())
	if err != nil {
		return s, err
	}
	s.Redis = redis.NewClient(opt)
	s.cleanup = append(s.cleanup, s.deleteKeys)
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return s, fmt.Errorf("ping Redis at %s: %w", benchRedisURL(), err)
	}

	cfg := config.Default()
	sep := "?"
	if strings.Contains(benchDatabaseURL(), "?") {
		sep = "&"
	}
	cfg.DatabaseURL = benchDatabaseURL() + sep + "search_path=" + s.schema
	cfg.RedisURL = benchRedisURL()
	cfg.RedisPrefix = s.Prefix
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Migrate = true
	cfg.DataDir = dir
	cfg.ShutdownTimeout = 5 * time.Second
	if adjust != nil {
		adjust(&cfg)
	}
	a, err := app.BuildWith(ctx, cfg, slog.New(slog.DiscardHandler), app.RoleServer, opts)
	if err != nil {
		return s, fmt.Errorf("build the server: %w", err)
	}
	s.app = a
	s.Deps = a.ServerDeps()
	srv, err := server.New(cfg, s.Deps)
	if err != nil {
		return s, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s.stop, s.runErr = stop, make(chan error, 1)
	go func() { s.runErr <- srv.Run(runCtx) }()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s.Addr, s.HTTPAddr, err = srv.Addrs(wctx); err != nil {
		return s, fmt.Errorf("the server did not start listening: %w", err)
	}
	s.Conn, err = grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	return s, err
}

// Close stops the server and removes its schema and keys. Safe on a half-started server.
func (s *liveServer) Close() {
	if s.Conn != nil {
		_ = s.Conn.Close()
	}
	if s.stop != nil {
		s.stop()
		select {
		case <-s.runErr:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "bench: the server did not stop within 30s")
		}
	}
	if s.app != nil {
		_ = s.app.Close()
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

func (s *liveServer) dropSchema() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, benchDatabaseURL())
	if err == nil {
		_, err = conn.Exec(ctx, "DROP SCHEMA "+s.schema+" CASCADE")
		conn.Close(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", s.schema, err)
	}
}

// deleteKeys removes the prefix's keys and the queue's, which taskq names taskq:{<prefix>...}.
func (s *liveServer) deleteKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, pattern := range []string{s.Prefix + "*", "taskq:{" + s.Prefix + "*"} {
		errs = append(errs, deleteKeys(ctx, s.Redis, pattern))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "bench: delete keys of %s: %v\n", s.Prefix, err)
	}
	_ = s.Redis.Close()
}

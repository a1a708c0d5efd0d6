// Package servertest starts a real pipeline server for a test: on the test's own Postgres schema
// (dbtest) and Redis key prefix (redistest), listening on 127.0.0.1 ports, optionally with the
// reconciler, the crawl runner and an in-process worker pool. A server can be stopped and
// started again on the same addresses and database, as a process restart would, so clients can
// be tested across it.
package servertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/server"
)

// Wait bounds every wait of this package (building, listening, stopping), so a hang fails the
// test instead of the package timeout.
const Wait = 15 * time.Second

// Options say what runs besides the API server.
type Options struct {
	// Config adjusts the configuration before the server is built (every start uses it).
	Config func(*config.Config)
	// Deps adjusts the server's dependencies before it is built (every start uses it).
	Deps func(*server.Deps)
	// Background runs the reconciler and the crawl runner, so crawls run and lost work is
	// found again.
	Background bool
	// Workers runs an in-process worker pool that processes batches from the queue. Without
	// it, processing jobs stay PENDING until the test drives them through Deps.Jobs.
	Workers bool
}

// Server is a running (or stopped) server of one test.
type Server struct {
	// Addr is the gRPC address (host:port); it stays the same across restarts.
	Addr string
	// HTTPAddr is the REST gateway's address; it stays the same across restarts.
	HTTPAddr string
	// Config is the configuration the server runs with.
	Config config.Config
	// Deps are the dependencies of the current (or last) start: its job manager and content
	// store work on the test's database, also while the server is stopped.
	Deps server.Deps

	t    testing.TB
	opts Options

	mu      sync.Mutex
	app     *app.App // of the current or last start; closed by the next start or the cleanup
	stop    context.CancelFunc
	runErr  chan error
	bg      sync.WaitGroup
	running bool
}

// Start starts a server for t with a fresh schema and Redis prefix. It stops when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	_, dbURL := dbtest.NewWithURL(t)
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { cleanQueueKeys(rdb, prefix) })

	cfg := config.Default()
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = redistest.URL()
	cfg.RedisPrefix = prefix
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Migrate = false // dbtest has migrated the schema
	cfg.DataDir = t.TempDir()
	cfg.WatchPollInterval = 200 * time.Millisecond
	cfg.PollInterval = 200 * time.Millisecond
	cfg.RetryBaseDelay = 5 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.CrawlAllowLoopback = true // test sites are httptest servers on 127.0.0.1
	cfg.CrawlDelay = 0
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	s := &Server{Config: cfg, t: t, opts: opts}
	t.Cleanup(func() {
		s.Stop()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.app != nil {
			if err := s.app.Close(); err != nil {
				t.Errorf("servertest: close: %v", err)
			}
			s.app = nil
		}
	})
	s.Restart()
	return s
}

// Restart stops the server when it runs, then starts it again on the same addresses with newly
// built dependencies (new pools, bus and queue), as a restarted process would.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app != nil {
		if err := s.app.Close(); err != nil {
			s.t.Errorf("servertest: close before restart: %v", err)
		}
		s.app = nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	a, err := app.Build(ctx, s.Config, slog.New(slog.DiscardHandler), app.RoleServer)
	if err != nil {
		s.t.Fatalf("servertest: build: %v", err)
	}
	s.app = a
	deps := a.ServerDeps()
	if s.opts.Deps != nil {
		s.opts.Deps(&deps)
	}
	s.Deps = deps
	srv, err := server.New(s.Config, deps)
	if err != nil {
		s.t.Fatalf("servertest: new server: %v", err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	s.stop, s.runErr, s.running = stop, make(chan error, 1), true
	go func() { s.runErr <- srv.Run(runCtx) }()
	if s.opts.Background {
		s.bg.Go(func() { a.Reconciler.Run(runCtx) })
		s.bg.Go(func() { a.Crawls.Run(runCtx) })
	}
	grpcAddr, httpAddr, err := srv.Addrs(ctx)
	if err != nil {
		select {
		case runErr := <-s.runErr:
			s.t.Fatalf("servertest: the server stopped before listening: %v", runErr)
		default:
			s.t.Fatalf("servertest: the server did not start listening: %v", err)
		}
	}
	// Later starts listen where the first did, so clients find the server again.
	s.Addr, s.HTTPAddr = grpcAddr, httpAddr
	s.Config.GRPCAddr, s.Config.HTTPAddr = grpcAddr, httpAddr
	if s.opts.Workers {
		s.bg.Go(func() {
			if err := a.RunWorkers(runCtx, grpcAddr, ""); err != nil && runCtx.Err() == nil {
				s.t.Errorf("servertest: workers: %v", err)
			}
		})
	}
}

// Stop shuts the server down gracefully (watch streams end with Unavailable, the ports close)
// and waits for it and its background loops. Deps stay usable until the next start or the end
// of the test. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.running = false
	s.stop()
	s.bg.Wait()
	select {
	case err := <-s.runErr:
		if err != nil {
			s.t.Errorf("servertest: Run returned %v on graceful shutdown", err)
		}
	case <-time.After(s.Config.ShutdownTimeout + Wait):
		s.t.Errorf("servertest: the server did not stop within %s", s.Config.ShutdownTimeout+Wait)
	}
}

// cleanQueueKeys deletes the queue's keys of a test, which taskq names taskq:{<prefix>...}:...,
// outside the test's prefix.
func cleanQueueKeys(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	keys, _ := rdb.Keys(ctx, "taskq:{"+prefix+"*").Result()
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

// SelfSignedCert writes a self-signed certificate valid for the given DNS names and IP addresses
// (and its key) as PEM files in a temporary directory of t, for a server's
// PIPELINE_TLS_CERT_FILE / PIPELINE_TLS_KEY_FILE and a client's CA file.
func SelfSignedCert(t testing.TB, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "servertest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago, for a test that
// dials a server before it starts (Options.Config can set GRPCAddr to it).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

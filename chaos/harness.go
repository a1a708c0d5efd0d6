package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

const collection = "chaos_chunks"

// harness holds everything one run started.
type harness struct {
	opts    options
	id      string
	started time.Time

	tmp         string
	pipelineBin string
	milvusBin   string
	ps          *procs

	pg       *pgCluster   // private Postgres (nil with -postgres-url)
	redis    *redisServer // private Redis (nil with -redis-url)
	mem      *memTracker
	stopMem  context.CancelFunc
	adminURL string
	dbName   string
	dbURL    string
	redisURL string
	prefix   string
	rdb      *redis.Client

	grpcAddr, httpAddr        string
	milvusGRPC, milvusControl string
	emb                       *embedder
	env                       []string

	mu          sync.Mutex
	server      *proc
	workers     []*proc
	nextWorker  int
	serverStart int

	conn    *grpc.ClientConn
	jobs    pipelinev1.JobServiceClient
	content pipelinev1.ContentServiceClient
}

func (h *harness) logf(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(h.started).Seconds(), fmt.Sprintf(format, args...))
}

func (h *harness) setup(ctx context.Context) error {
	reapStale(h.logf)
	var err error
	if h.tmp, err = os.MkdirTemp("", runDirPrefix+h.id+"-"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.tmp, "harness.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	h.mem = newMemTracker()
	h.ps = &procs{dir: h.tmp, mem: h.mem}
	memCtx, stopMem := context.WithCancel(context.Background())
	h.stopMem = stopMem
	go h.sampleMemory(memCtx, 500*time.Millisecond)
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	h.logf("run %s, seed %d, temp dir %s; building binaries", h.id, h.opts.seed, h.tmp)
	if h.pipelineBin, h.milvusBin, err = build(ctx, root, h.tmp); err != nil {
		return err
	}

	// Postgres: a private cluster, or a database of our own on the given server.
	adminURL := h.opts.pgURL
	if adminURL == "" {
		h.logf("starting a private Postgres cluster (initdb, pg_ctl as the postgres user)")
		if h.pg, err = startPostgres(ctx, h.logf); err != nil {
			return err
		}
		adminURL = h.pg.url("postgres")
	}
	h.adminURL = adminURL
	h.dbName = "chaos_" + h.id
	if err := h.adminExec(ctx, "CREATE DATABASE "+h.dbName); err != nil {
		h.dbName = ""
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + h.dbName
	h.dbURL = u.String()

	// Redis: a private redis-server, or a key prefix of our own on the given one.
	h.redisURL = h.opts.redisURL
	if h.redisURL == "" {
		if h.redis, err = startRedis(ctx, h.ps, filepath.Join(h.tmp, "redis")); err != nil {
			return err
		}
		h.redisURL = h.redis.url()
	}
	h.prefix = "chaos:" + h.id + ":"
	ropt, err := redis.ParseURL(h.redisURL)
	if err != nil {
		return err
	}
	h.rdb = redis.NewClient(ropt)
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}

	// The fake Milvus.
	mp, err := h.ps.start("milvusfake", os.Environ(), h.milvusBin)
	if err != nil {
		return err
	}
	if h.milvusGRPC, h.milvusControl, err = milvusAddrs(ctx, mp); err != nil {
		return err
	}

	// The embedder.
	rate, hangs := 0.10, 2
	if !h.opts.short {
		hangs = 6
	}
	h.emb = newEmbedder(64, rate, hangs, h.opts.seed)
	if err := h.emb.start(); err != nil {
		return err
	}

	if h.grpcAddr, err = freePort(); err != nil {
		return err
	}
	if h.httpAddr, err = freePort(); err != nil {
		return err
	}
	h.env = h.buildEnv()

	if err := h.startServer(ctx); err != nil {
		return err
	}
	for range 3 {
		if _, err := h.startWorker(); err != nil {
			return err
		}
	}
	h.conn, err = grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	h.jobs = pipelinev1.NewJobServiceClient(h.conn)
	h.content = pipelinev1.NewContentServiceClient(h.conn)
	pgDesc, redisDesc := "database "+h.dbName+" on "+redact(adminURL), "prefix "+h.prefix+" on "+redact(h.redisURL)
	if h.pg != nil {
		pgDesc = fmt.Sprintf("private Postgres 127.0.0.1:%d (pid %d, %s)", h.pg.port, h.pg.postmasterPID(), h.pg.root)
	}
	if h.redis != nil {
		redisDesc = fmt.Sprintf("private Redis %s (append-only file)", h.redis.addr)
	}
	h.logf("up: server grpc %s http %s, 3 workers, milvusfake %s (control %s), embedder %s, %s, %s",
		h.grpcAddr, h.httpAddr, h.milvusGRPC, h.milvusControl, h.emb.baseURL(), pgDesc, redisDesc)
	return nil
}

// redact drops the password of a URL for printing.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// buildEnv is the environment of the server and the workers: ours, minus any PIPELINE_* the
// caller had set.
func (h *harness) buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PIPELINE_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PIPELINE_DATABASE_URL="+h.dbURL,
		"PIPELINE_REDIS_URL="+h.redisURL,
		"PIPELINE_REDIS_PREFIX="+h.prefix,
		"PIPELINE_GRPC_ADDR="+h.grpcAddr,
		"PIPELINE_HTTP_ADDR="+h.httpAddr,
		"PIPELINE_SERVER="+h.grpcAddr,
		"PIPELINE_VECTOR_STORE=milvus",
		"PIPELINE_MILVUS_ADDR="+h.milvusGRPC,
		"PIPELINE_MILVUS_COLLECTION="+collection,
		"PIPELINE_EMBEDDER=openai",
		"PIPELINE_OPENAI_BASE_URL="+h.emb.baseURL(),
		"PIPELINE_OPENAI_MODEL=chaos-hash-64",
		"PIPELINE_EMBED_DIMENSION=64",
		"PIPELINE_POLL_INTERVAL=2s",
		"PIPELINE_WATCH_POLL_INTERVAL=1s",
		"PIPELINE_LEASE=10s",
		"PIPELINE_MAX_CONCURRENT_JOBS=2",
		"PIPELINE_BATCH_SIZE=25",
		// Transient faults from the embedder (at most 2 per input) and the store (bursts)
		// can hit one document step several times; 6 retries let it through.
		"PIPELINE_MAX_RETRIES=6",
		"PIPELINE_CHUNK_MAX_TOKENS=256",
		"PIPELINE_CHUNK_OVERLAP_TOKENS=32",
		"PIPELINE_SHUTDOWN_TIMEOUT=3s",
		"PIPELINE_LOG_LEVEL=info",
	)
}

func (h *harness) startServer(ctx context.Context) error {
	h.mu.Lock()
	h.serverStart++
	name := fmt.Sprintf("server-%d", h.serverStart)
	h.mu.Unlock()
	p, err := h.ps.start(name, h.env, h.pipelineBin, "serve")
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.server = p
	h.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !p.alive() {
			return fmt.Errorf("%s exited: %v; log:\n%s", name, p.err, strings.Join(tail(p.logPath, 20), "\n"))
		}
		if resp, err := http.Get("http://" + h.httpAddr + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 30s (log %s)", name, p.logPath)
}

func (h *harness) startWorker() (*proc, error) {
	h.mu.Lock()
	h.nextWorker++
	name := fmt.Sprintf("worker-%d", h.nextWorker)
	h.mu.Unlock()
	p, err := h.ps.start(name, h.env, h.pipelineBin, "worker")
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.workers = append(h.workers, p)
	h.mu.Unlock()
	return p, nil
}

func (h *harness) adminExec(ctx context.Context, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, h.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(cctx, sql)
	return err
}

// deleteRedisKeys deletes every key of the run, the service's (prefix*) and taskq's
// (taskq:{prefix*), in one Lua script, so it is atomic like FLUSHALL: no enqueue can fall between
// deleting a batch's marker and deleting its message. It returns how many went.
func (h *harness) deleteRedisKeys(ctx context.Context) (int, error) {
	n, err := deleteScript.Run(ctx, h.rdb, nil, h.prefix+"*", "taskq:{"+h.prefix+"*").Int()
	if err != nil {
		return 0, fmt.Errorf("delete keys: %w", err)
	}
	return n, nil
}

var deleteScript = redis.NewScript(`
local n = 0
for _, pattern in ipairs(ARGV) do
  local keys = redis.call('KEYS', pattern)
  for i = 1, #keys, 500 do
    n = n + redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
  end
end
return n
`)

// cleanup stops every process (the private Postgres too), drops the database and deletes the
// Redis keys when they live on shared servers, and removes the temp dirs.
func (h *harness) cleanup(failed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if h.conn != nil {
		_ = h.conn.Close()
	}
	if h.stopMem != nil {
		h.stopMem()
	}
	if h.ps != nil {
		h.ps.stopAll()
		if failed {
			for _, p := range h.ps.list() {
				lines := tail(p.logPath, 8)
				if len(lines) > 0 {
					fmt.Fprintf(os.Stderr, "--- last lines of %s:\n%s\n", p.name, strings.Join(lines, "\n"))
				}
			}
		}
	}
	if h.emb != nil {
		h.emb.close()
	}
	if h.rdb != nil {
		if h.redis == nil { // shared Redis: our keys only
			if n, err := h.deleteRedisKeys(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "chaos: cleanup: redis keys under %s: %v\n", h.prefix, err)
			} else {
				fmt.Printf("cleanup: deleted %d redis keys under %s and taskq:{%s\n", n, h.prefix, h.prefix)
			}
		}
		_ = h.rdb.Close()
	}
	if h.pg != nil {
		if failed {
			if lines := tail(filepath.Join(h.pg.root, "postgres.log"), 8); len(lines) > 0 {
				fmt.Fprintf(os.Stderr, "--- last lines of the private Postgres log:\n%s\n", strings.Join(lines, "\n"))
			}
		}
		if h.opts.keepLogs && h.tmp != "" {
			if b, err := os.ReadFile(filepath.Join(h.pg.root, "postgres.log")); err == nil {
				_ = os.WriteFile(filepath.Join(h.tmp, "postgres.log"), b, 0o644)
			}
		}
		h.pg.stop()
		fmt.Printf("cleanup: stopped the private Postgres and removed %s\n", h.pg.root)
	} else if h.dbName != "" {
		if err := h.adminExec(ctx, "DROP DATABASE IF EXISTS "+h.dbName+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: cleanup: drop database %s: %v\n", h.dbName, err)
		} else {
			fmt.Printf("cleanup: dropped database %s\n", h.dbName)
		}
	}
	if h.tmp != "" {
		if h.opts.keepLogs {
			fmt.Printf("cleanup: logs kept in %s\n", h.tmp)
		} else if err := os.RemoveAll(h.tmp); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: cleanup: %v\n", err)
		} else if h.redis != nil {
			fmt.Printf("cleanup: stopped the private Redis and removed %s\n", h.tmp)
		}
	}
}

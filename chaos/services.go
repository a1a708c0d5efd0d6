package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The harness's own Redis and Postgres. Faults that would hit every user of a shared server (a
// restart, FLUSHALL) are only injected into these.

// ---- Redis ----

// redisServer is a private redis-server on 127.0.0.1 at a free port, with its data under dir.
// It keeps an append-only file (fsynced every second, written out on a clean shutdown), so a
// restart is a restart and FLUSHALL is the only way it loses data.
type redisServer struct {
	ps   *procs
	dir  string
	addr string
	p    *proc
	n    int // starts so far
}

func startRedis(ctx context.Context, ps *procs, dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("private Redis needs redis-server on PATH (or pass -redis-url): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{ps: ps, dir: dir, addr: addr}
	return r, r.start(ctx, bin)
}

func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

func (r *redisServer) start(ctx context.Context, bin string) error {
	_, port, _ := net.SplitHostPort(r.addr)
	r.n++
	p, err := r.ps.start(fmt.Sprintf("redis-%d", r.n), os.Environ(), bin,
		"--port", port, "--bind", "127.0.0.1", "--protected-mode", "yes", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
		"--logfile", "", "--databases", "1")
	if err != nil {
		return err
	}
	r.p = p
	return waitFor(ctx, 20*time.Second, p, func(cctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(cctx).Err()
	})
}

// restart shuts Redis down cleanly (SIGTERM: it writes its append-only file and exits), waits
// pause, and starts it again on the same port and data. It returns the keys before and after.
func (r *redisServer) restart(ctx context.Context, pause time.Duration) (before, after int64, err error) {
	bin := r.p.cmd.Path
	before = r.dbSize(ctx)
	r.p.stop(15 * time.Second)
	select {
	case <-ctx.Done():
		return before, -1, ctx.Err()
	case <-time.After(pause):
	}
	if err := r.start(ctx, bin); err != nil {
		return before, -1, err
	}
	return before, r.dbSize(ctx), nil
}

// flushAll is a real FLUSHALL: every key of the private Redis is gone.
func (r *redisServer) flushAll(ctx context.Context) (before int64, err error) {
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	defer c.Close()
	before = r.dbSize(ctx)
	return before, c.FlushAll(ctx).Err()
}

func (r *redisServer) dbSize(ctx context.Context) int64 {
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := c.DBSize(cctx).Result()
	if err != nil {
		return -1
	}
	return n
}

// ---- Postgres ----

const pgBinDir = "/usr/lib/postgresql/15/bin"

// pgCluster is a private Postgres cluster: initdb'd into a temp dir owned by the postgres user,
// run by pg_ctl as that user, listening on 127.0.0.1 at a free port (unix socket in the temp dir),
// trust auth, fsync off (a crashed postmaster loses nothing: the page cache survives it; only
// a machine crash would).
type pgCluster struct {
	root   string // temp dir owned by postgres: data/, postgres.log, harness.pid
	data   string
	port   int
	uid    int
	gid    int
	logf   func(string, ...any)
	closed bool
}

func startPostgres(ctx context.Context, logf func(string, ...any)) (*pgCluster, error) {
	if _, err := os.Stat(filepath.Join(pgBinDir, "pg_ctl")); err != nil {
		return nil, fmt.Errorf("private Postgres needs %s/pg_ctl (or pass -postgres-url): %w", pgBinDir, err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("private Postgres runs as the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	root, err := os.MkdirTemp("", pgDirPrefix)
	if err != nil {
		return nil, err
	}
	c := &pgCluster{root: root, data: filepath.Join(root, "data"), uid: uid, gid: gid, logf: logf}
	// Who owns this cluster, so a later run can stop it if this harness was killed (-9).
	if err := os.WriteFile(filepath.Join(root, "harness.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		c.remove()
		return nil, err
	}
	if err := os.Chown(root, uid, gid); err != nil {
		c.remove()
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		c.remove()
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	c.port, _ = strconv.Atoi(port)
	if out, err := c.asPostgres(ctx, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.port, c.root)
	if out, err := c.asPostgres(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.data,
		"-l", filepath.Join(c.root, "postgres.log"), "-o", opts); err != nil {
		c.stop()
		return nil, fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return c, nil
}

// url is the address of one database of the cluster.
func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// asPostgres runs a Postgres program as the postgres user. Its own process group keeps a
// Ctrl-C in the terminal away from it (and from the postmaster pg_ctl starts): the harness
// stops the cluster itself, in order.
func (c *pgCluster) asPostgres(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBinDir, prog)}, args...)...)
	cmd.Dir = c.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On Ctrl-C, end runuser and the program it runs, not runuser alone.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// restartImmediate is `pg_ctl restart -m immediate`: the postmaster and every backend quit at
// once without a checkpoint (like a crash), and the new postmaster replays the WAL. It returns
// the old and new postmaster pids.
func (c *pgCluster) restartImmediate(ctx context.Context) (oldPID, newPID int, err error) {
	oldPID = c.postmasterPID()
	out, err := c.asPostgres(ctx, "pg_ctl", "restart", "-m", "immediate", "-w", "-t", "60", "-D", c.data,
		"-l", filepath.Join(c.root, "postgres.log"))
	if err != nil {
		return oldPID, 0, fmt.Errorf("pg_ctl restart: %w\n%s", err, out)
	}
	return oldPID, c.postmasterPID(), nil
}

// postmasterPID reads the first line of postmaster.pid (0 when not running).
func (c *pgCluster) postmasterPID() int {
	return postmasterPID(c.data)
}

func postmasterPID(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// stop shuts the cluster down (fast, then kill -9 of the postmaster, whose backends follow it)
// and removes its directory. Safe to call twice.
func (c *pgCluster) stop() {
	if c == nil || c.closed {
		return
	}
	c.closed = true
	stopCluster(c.data, c.asPostgres)
	c.remove()
}

func (c *pgCluster) remove() {
	if err := os.RemoveAll(c.root); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: cleanup: %v\n", err)
	}
}

func stopCluster(data string, run func(context.Context, string, ...string) (string, error)) {
	pid := postmasterPID(data)
	if pid == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, "pg_ctl", "stop", "-m", "fast", "-w", "-t", "20", "-D", data); err == nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	// Backends exit when they notice the postmaster is gone; wait for them to let go of the dir.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(childrenOf(pid)) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- leftovers of killed runs ----

const (
	pgDirPrefix  = "chaos-pg-"
	runDirPrefix = "chaos-run-"
)

// reapStale stops the Postgres clusters and removes the temp dirs of earlier runs whose harness
// is gone (killed with -9, so it could not clean up). Child processes of such a run died with
// it (Pdeathsig); a postmaster started by pg_ctl does not, hence this.
func reapStale(logf func(string, ...any)) {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || (!strings.HasPrefix(name, pgDirPrefix) && !strings.HasPrefix(name, runDirPrefix)) {
			continue
		}
		dir := filepath.Join(os.TempDir(), name)
		b, err := os.ReadFile(filepath.Join(dir, "harness.pid"))
		if err != nil {
			continue // not ours, or still being set up
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if strings.HasPrefix(name, pgDirPrefix) {
			c := &pgCluster{root: dir, data: filepath.Join(dir, "data")}
			stopCluster(c.data, c.asPostgres)
		}
		if err := os.RemoveAll(dir); err == nil {
			logf("removed %s, left behind by a killed run (harness pid %d)", dir, pid)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// waitFor polls ok until it succeeds, p exits, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, p *proc, ok func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("%s exited: %v; log:\n%s", p.name, p.err, strings.Join(tail(p.logPath, 20), "\n"))
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = ok(cctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s: %v", limit, last)
}

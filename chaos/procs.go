package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process. Each runs in its own process group (so a Ctrl-C in the terminal
// reaches only the harness, which then stops everything in order) and dies with the harness
// (Pdeathsig) should the harness itself be killed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid once done is closed
	killed  bool  // by the harness (kill -9 or cleanup): an exit is expected
	mem     *memTracker
}

// procs tracks every child ever started, for cleanup.
type procs struct {
	mu  sync.Mutex
	all []*proc
	dir string      // logs go here
	mem *memTracker // every child's memory is sampled into it (may be nil)
}

// list returns every child ever started.
func (ps *procs) list() []*proc {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]*proc(nil), ps.all...)
}

func (ps *procs) start(name string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(ps.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), mem: ps.mem}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.mu.Unlock()
	return p, nil
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// sampleMem records the process's memory figures (a last look before it is ended).
func (p *proc) sampleMem() {
	if p.mem != nil {
		p.mem.sample(p.name, p.cmd.Process.Pid)
	}
}

// kill9 sends SIGKILL to the process's group and waits for it to be gone.
func (p *proc) kill9() {
	p.sampleMem()
	p.killed = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop asks politely (SIGTERM), then kills after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	p.sampleMem()
	p.killed = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill9()
	}
}

// stopAll ends every child still running.
func (ps *procs) stopAll() {
	all := ps.list()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(5 * time.Second) }()
	}
	wg.Wait()
}

// unexpectedExits lists children that exited without the harness ending them.
func (ps *procs) unexpectedExits() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []string
	for _, p := range ps.all {
		if !p.killed && !p.alive() {
			out = append(out, fmt.Sprintf("%s exited: %v (log %s)", p.name, p.err, p.logPath))
		}
	}
	return out
}

// tail returns the last n lines of a log file.
func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// freePort returns a loopback address with a port nobody uses right now, taken from below the
// kernel's ephemeral range. The harness restarts the server, Redis and Postgres on the ports they
// first had. A port from the ephemeral range can meanwhile become the local end of some outgoing
// connection (a worker's to Postgres, say), and the restart then fails with "address already in
// use"; the kernel never hands out a port below that range on its own.
func freePort() (string, error) {
	low, err := ephemeralLow()
	if err != nil {
		return "", err
	}
	const first = 10000 // below this live the well-known services' ports
	if low-first < 1000 {
		return "", fmt.Errorf("the ephemeral port range starts at %d, leaving too few ports below it (from %d) for the harness's listeners", low, first)
	}
	var last error
	for range 100 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+rand.IntN(low-first)))
		if err != nil {
			last = err
			continue
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", fmt.Errorf("no free port below %d after 100 tries: %w", low, last)
}

// ephemeralLow is the first port of the range the kernel picks outgoing connections' ports from.
func ephemeralLow() (int, error) {
	const path = "/proc/sys/net/ipv4/ip_local_port_range"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read the ephemeral port range: %w", err)
	}
	return parsePortRangeLow(string(b))
}

// parsePortRangeLow reads the first port of ip_local_port_range's "low<whitespace>high".
func parsePortRangeLow(s string) (int, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range %q: want two ports", s)
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low < 1 || low > 65535 {
		return 0, fmt.Errorf("ip_local_port_range %q: bad first port", s)
	}
	return low, nil
}

// moduleRoot is the directory of the go.mod the harness runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// build compiles the binaries the harness runs into dir.
func build(ctx context.Context, root, dir string) (pipeline, milvus string, err error) {
	pipeline, milvus = filepath.Join(dir, "pipeline"), filepath.Join(dir, "milvusfake")
	for _, b := range []struct{ out, pkg string }{{pipeline, "./cmd/pipeline"}, {milvus, "./cmd/milvusfake"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return pipeline, milvus, nil
}

// milvusAddrs waits for cmd/milvusfake's first stdout line (written to its log) and parses it.
func milvusAddrs(ctx context.Context, p *proc) (grpcAddr, controlAddr string, err error) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		if !p.alive() {
			return "", "", fmt.Errorf("milvusfake exited: %v", p.err)
		}
		for _, line := range tail(p.logPath, 50) {
			var a struct {
				GRPC    string `json:"grpc_addr"`
				Control string `json:"control_addr"`
			}
			if json.Unmarshal([]byte(line), &a) == nil && a.GRPC != "" && a.Control != "" {
				return a.GRPC, a.Control, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", "", fmt.Errorf("milvusfake did not report its addresses within 15s (log %s)", p.logPath)
}

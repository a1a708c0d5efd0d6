package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory of every process of the run, sampled from /proc/<pid>/status: VmRSS (resident now)
// and VmHWM (the kernel's high-water mark of VmRSS over the process's life). A process is sampled
// every interval and once more just before the harness kills or stops it, so VmHWM covers its
// whole life.

// memUsage is one process's figures, in KiB.
type memUsage struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	PeakRSSKB int64  `json:"peak_rss_kb"` // the highest VmRSS sampled
	HWMKB     int64  `json:"hwm_kb"`      // the last VmHWM read: the peak over its life
	Samples   int    `json:"samples"`
}

// readStatus returns VmRSS and VmHWM of pid in KiB.
func readStatus(pid int) (rss, hwm int64, err error) {
	v, err := statusFields(pid, "VmRSS", "VmHWM")
	if err != nil {
		return 0, 0, err
	}
	return v[0], v[1], nil
}

// statusFields reads the named kB fields of /proc/<pid>/status, in that order.
func statusFields(pid int, names ...string) ([]int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]int64, len(names))
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for i, name := range names {
			if k != name {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
			}
			out[i] = n
			found++
		}
	}
	if found < len(names) {
		return nil, fmt.Errorf("/proc/%d/status: missing some of %v (process gone?)", pid, names)
	}
	return out, sc.Err()
}

// childrenOf lists the pids whose parent is pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses, so cut at the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
				out = append(out, child)
			}
		}
	}
	return out
}

// memTracker keeps the figures of every process seen, by name.
type memTracker struct {
	mu    sync.Mutex
	procs map[string]*memUsage
	// The private Postgres: the peak of its estimated footprint (see samplePostgres).
	pgSumPeakKB int64
	pgMaxProcs  int
}

func newMemTracker() *memTracker { return &memTracker{procs: map[string]*memUsage{}} }

// sample reads one process and folds it into name's figures.
func (m *memTracker) sample(name string, pid int) (rss int64, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	rss, hwm, err := readStatus(pid)
	if err != nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.procs[name]
	if u == nil || u.PID != pid {
		// A new incarnation under an old name (the postmaster after a restart) keeps the peak.
		if u == nil {
			u = &memUsage{Name: name}
			m.procs[name] = u
		}
		u.PID = pid
	}
	u.PeakRSSKB = max(u.PeakRSSKB, rss)
	u.HWMKB = max(u.HWMKB, hwm)
	u.Samples++
	return rss, true
}

// samplePostgres samples the postmaster and estimates the cluster's footprint: the private
// (anonymous) memory of every process summed, plus the largest shared-memory and file-backed
// parts once (shared buffers and the binary are mapped by every process, so summing VmRSS
// would count them once per backend).
func (m *memTracker) samplePostgres(postmaster int) {
	if _, ok := m.sample("postgres (postmaster)", postmaster); !ok {
		return
	}
	var anon, file, shmem int64
	n := 0
	for _, pid := range append([]int{postmaster}, childrenOf(postmaster)...) {
		v, err := statusFields(pid, "RssAnon", "RssFile", "RssShmem")
		if err != nil {
			continue
		}
		anon += v[0]
		file, shmem = max(file, v[1]), max(shmem, v[2])
		n++
	}
	m.mu.Lock()
	m.pgSumPeakKB = max(m.pgSumPeakKB, anon+file+shmem)
	m.pgMaxProcs = max(m.pgMaxProcs, n)
	m.mu.Unlock()
}

// sampleMemory samples the harness itself, every live child and the postmaster every interval until ctx
// ends.
func (h *harness) sampleMemory(ctx context.Context, every time.Duration) {
	for {
		h.mem.sample("chaos harness (+ embedder)", os.Getpid())
		for _, p := range h.ps.list() {
			if p.alive() {
				p.sampleMem()
			}
		}
		if h.pg != nil {
			h.mem.samplePostgres(h.pg.postmasterPID())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// report lists the figures, biggest first, with the servers' maximum over all their lives.
func (m *memTracker) report() memReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := memReport{PostgresSumPeakKB: m.pgSumPeakKB, PostgresProcs: m.pgMaxProcs}
	for _, u := range m.procs {
		r.Processes = append(r.Processes, *u)
		if strings.HasPrefix(u.Name, "server-") {
			r.ServerPeakKB = max(r.ServerPeakKB, u.HWMKB, u.PeakRSSKB)
		}
		if strings.HasPrefix(u.Name, "worker-") {
			r.WorkerPeakKB = max(r.WorkerPeakKB, u.HWMKB, u.PeakRSSKB)
		}
	}
	sort.Slice(r.Processes, func(i, j int) bool { return r.Processes[i].Name < r.Processes[j].Name })
	return r
}

type memReport struct {
	Processes         []memUsage `json:"processes"`
	ServerPeakKB      int64      `json:"server_peak_rss_kb"`
	WorkerPeakKB      int64      `json:"worker_peak_rss_kb"`
	PostgresSumPeakKB int64      `json:"postgres_cluster_sum_rss_peak_kb"`
	PostgresProcs     int        `json:"postgres_cluster_max_processes"`
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

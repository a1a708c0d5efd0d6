package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procStatCPU reads a /proc/<pid>/stat line: the process's command name and the user plus system
// CPU time it has used. The command is in parentheses and may itself hold spaces and
// parentheses, so the fields are counted from the last ')': state is the first after it, utime
// and stime the 12th and 13th (the 14th and 15th of the line).
func procStatCPU(b []byte) (comm string, cpu time.Duration, ok bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return "", 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || u < 0 || s < 0 {
		return "", 0, false
	}
	return string(b[open+1 : end]), time.Duration(u+s) * clockTick, true
}

// commandCPU sums the CPU time used so far by the processes under root (a /proc) whose command
// name is one of names: what the machine's Postgres (every backend and helper) and Redis have
// used, read before and after a run. A process that ends between two readings takes its time
// with it, so the servers' long-lived processes are what this measures well. ok is false when
// root cannot be read (no /proc here).
func commandCPU(root string, names ...string) (map[string]time.Duration, bool) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, false
	}
	want := make(map[string]time.Duration, len(names))
	for _, n := range names {
		want[n] = 0
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue // not a process
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile, or not ours to read
		}
		comm, cpu, ok := procStatCPU(b)
		if _, counted := want[comm]; ok && counted {
			want[comm] += cpu
		}
	}
	return want, true
}

// Command names of the services whose CPU the dispatch and end-to-end cases report.
const (
	postgresCommand = "postgres"
	redisCommand    = "redis-server"
)

// cpuReading is the CPU time used so far by this process and by the machine's Postgres and
// Redis; services is nil where /proc cannot be read, and the zero value is no reading.
type cpuReading struct {
	taken    bool
	self     time.Duration
	services map[string]time.Duration
}

func readCPU() cpuReading {
	r := cpuReading{taken: true, self: cpuTime()}
	if s, ok := commandCPU("/proc", postgresCommand, redisCommand); ok {
		r.services = s
	}
	return r
}

// cpuColumns names the columns a reading difference fills: this process's, Postgres's and
// Redis's CPU per unit of work; an empty name is left out.
type cpuColumns struct{ self, postgres, redis string }

// per adds to sample the CPU milliseconds per unit (n units: jobs, documents) that this process,
// Postgres and Redis used between two readings; the services' columns are left out when they
// could not be read, and every column when a reading is missing.
func (r cpuReading) per(later cpuReading, n int, cols cpuColumns, sample Sample) {
	if !r.taken || !later.taken || n <= 0 {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(n) }
	set := func(name string, d time.Duration) {
		if name != "" {
			sample[name] = ms(d)
		}
	}
	set(cols.self, later.self-r.self)
	if r.services == nil || later.services == nil {
		return
	}
	set(cols.postgres, later.services[postgresCommand]-r.services[postgresCommand])
	set(cols.redis, later.services[redisCommand]-r.services[redisCommand])
}

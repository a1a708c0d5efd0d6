package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A stat line's command may hold spaces and parentheses; the CPU fields are counted after the
// last ')'.
func TestProcStatCPU(t *testing.T) {
	t.Parallel()
	line := "4242 (postgres: a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 1 0 100 200 300\n"
	comm, cpu, ok := procStatCPU([]byte(line))
	require.True(t, ok)
	require.Equal(t, "postgres: a (b) c", comm)
	require.Equal(t, 267*clockTick, cpu)

	for _, bad := range []string{"", "4242 postgres S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 u 17 0"} {
		_, _, ok := procStatCPU([]byte(bad))
		require.False(t, ok, "%q", bad)
	}
}

// commandCPU adds up the processes of each named command, and only those.
func TestCommandCPU(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	stat := func(pid, comm string, utime, stime int) {
		dir := filepath.Join(root, pid)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		line := pid + " (" + comm + ") S 1 1 1 0 -1 0 0 0 0 0 " + strconv.Itoa(utime) + " " + strconv.Itoa(stime) + " 0 0 20 0 1 0 1 1 1\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644))
	}
	stat("10", "postgres", 100, 20)
	stat("11", "postgres", 5, 5)
	stat("12", "redis-server", 7, 3)
	stat("13", "bash", 1000, 1000)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "self"), 0o755)) // not a pid: skipped
	require.NoError(t, os.MkdirAll(filepath.Join(root, "14"), 0o755))   // ended: no stat

	got, ok := commandCPU(root, postgresCommand, redisCommand)
	require.True(t, ok)
	require.Equal(t, map[string]time.Duration{postgresCommand: 130 * clockTick, redisCommand: 10 * clockTick}, got)

	_, ok = commandCPU(filepath.Join(root, "missing"), postgresCommand)
	require.False(t, ok)
}

// per divides the differences by the units, and leaves out what was not read or not named.
func TestCPUPerUnit(t *testing.T) {
	t.Parallel()
	before := cpuReading{taken: true, self: time.Second, services: map[string]time.Duration{postgresCommand: 2 * time.Second, redisCommand: 0}}
	after := cpuReading{taken: true, self: 3 * time.Second, services: map[string]time.Duration{postgresCommand: 3 * time.Second, redisCommand: 500 * time.Millisecond}}
	s := Sample{}
	before.per(after, 1000, dispatchCPUColumns, s)
	require.Equal(t, Sample{cpuPerJob: 2, pgCPUPerJob: 1, redisCPUPerJob: 0.5}, s)

	s = Sample{}
	before.per(cpuReading{taken: true, self: 2 * time.Second}, 1000, dispatchCPUColumns, s)
	require.Equal(t, Sample{cpuPerJob: 1}, s)

	s = Sample{}
	before.per(cpuReading{}, 1000, dispatchCPUColumns, s)
	require.Empty(t, s)

	s = Sample{}
	before.per(after, 1000, cpuColumns{postgres: e2ePGCPUPerDoc}, s)
	require.Equal(t, Sample{e2ePGCPUPerDoc: 1}, s)
}

package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/internal/registry"
)

// TestWorkersAndStatsCommands runs `pipeline workers` and `pipeline stats` against a server with
// one registered worker and one pending job, in text and JSON.
func TestWorkersAndStatsCommands(t *testing.T) {
	t.Parallel()
	// The test's own Redis prefix, so it can register a worker where the server looks.
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { // taskq's keys of the queue on this prefix lie outside it
		if keys, _ := rdb.Keys(context.Background(), "taskq:{"+prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	b := setupServer(t, func(c *config.Config) { c.RedisPrefix = prefix })

	res := b.runClient(t, workersCmd())
	require.NoError(t, res.err)
	require.Equal(t, "no live workers\n", res.stdout)

	w, err := registry.New(rdb, prefix).NewWorker(registry.Config{
		ID: "host-a-42-abcd", Host: "host-a", Version: "v9.9.9", TotalSlots: 4, Interval: time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	job := uuid.New()
	w.BatchStarted(job, uuid.New())
	w.DocumentDone(false)
	w.DocumentDone(true)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	require.Eventually(t, func() bool {
		res = b.runClient(t, workersCmd())
		return res.err == nil && strings.Contains(res.stdout, "host-a-42-abcd")
	}, clientWait, 20*time.Millisecond, "workers: %+v", res)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 2, res.stdout)
	require.Equal(t, []string{"WORKER", "HOST", "VERSION", "UP", "HEARTBEAT", "SLOTS", "DOCUMENTS", "FAILED", "ACTIVE", "JOBS"}, strings.Fields(lines[0]))
	row := strings.Fields(lines[1])
	require.Equal(t, []string{"host-a-42-abcd", "host-a", "v9.9.9"}, row[:3])
	require.Equal(t, []string{"1/4", "2", "1", job.String()}, row[len(row)-4:])

	res = b.runClient(t, workersCmd(), "--output", "json")
	require.NoError(t, res.err)
	var list pipelinev1.ListWorkersResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &list))
	require.Len(t, list.GetWorkers(), 1)
	got := list.GetWorkers()[0]
	require.Equal(t, "host-a-42-abcd", got.GetWorkerId())
	require.Equal(t, []string{job.String()}, got.GetActiveJobIds())
	require.EqualValues(t, 2, got.GetDocumentsProcessed())

	res = b.runClient(t, workersCmd(), "--host", "host-b")
	require.NoError(t, res.err)
	require.Equal(t, "no live workers\n", res.stdout)

	// A pending job of three documents: nothing consumes the queue in this test.
	src, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: "docs"})
	require.NoError(t, err)
	_, err = b.content.IngestDocuments(callCtx(t), &pipelinev1.IngestDocumentsRequest{
		SourceId: src.GetSource().GetSourceId(),
		Documents: []*pipelinev1.DocumentInput{
			{Uri: "a.md", Content: "# A"}, {Uri: "b.md", Content: "# B"}, {Uri: "c.md", Content: "# C"},
		},
	})
	require.NoError(t, err)

	res = b.runClient(t, statsCmd())
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, "workers     1 live, 1/4 slots busy\n")
	require.Contains(t, res.stdout, "backlog     1 batches queued (3 documents; oldest ")
	require.Contains(t, res.stdout, "throughput  0.00 documents/s over the last 1m0s: 0 succeeded, 0 skipped, 0 failed\n")
	require.Regexp(t, `(?m)^\s+process\s+1\s+0\s+0\s+0\s+0\s*$`, res.stdout)
	require.Regexp(t, `(?m)^\s+crawl\s+0\s+0\s+0\s+0\s+0\s*$`, res.stdout)

	res = b.runClient(t, statsCmd(), "--output", "json", "--window", "5m")
	require.NoError(t, res.err)
	var st pipelinev1.GetStatsResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &st))
	require.EqualValues(t, 1, st.GetProcessJobs().GetPending())
	require.EqualValues(t, 3, st.GetQueue().GetDocumentsQueued())
	require.EqualValues(t, 1, st.GetWorkers().GetWorkers())
	require.Equal(t, 5*time.Minute, st.GetThroughput().GetWindow().AsDuration())

	res = b.runClient(t, statsCmd(), "--window", "2h")
	require.ErrorContains(t, res.err, "--window")
	require.Equal(t, exitUsage, exitCode(res.err))
	require.Empty(t, res.stdout)
}

func TestSystemCommandsNeedTheReadScope(t *testing.T) {
	t.Parallel()
	const writeOnly = "writer-0123456789abcdef"
	b := setupServer(t, func(c *config.Config) { c.APIKeys = []string{writeOnly + ":write"} })
	for _, cmd := range []func() *cobra.Command{workersCmd, statsCmd} {
		res := b.runClient(t, cmd(), "--api-key", writeOnly)
		require.ErrorContains(t, res.err, "PERMISSION_DENIED")
		require.ErrorContains(t, res.err, "read scope")
		require.Equal(t, exitAuth, exitCode(res.err))
		res = b.runClient(t, cmd())
		require.ErrorContains(t, res.err, "--api-key")
		require.Equal(t, exitAuth, exitCode(res.err))
	}
}

func TestRoughDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                   "0s",
		1400 * time.Millisecond:        "1s",
		3*time.Minute + 10*time.Second: "3m10s",
		2*time.Hour + 5*time.Minute:    "2h5m",
		49 * time.Hour:                 "49h0m",
	} {
		require.Equal(t, want, roughDuration(d), "%s", d)
	}
}

package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/metrics"
)

func TestRecordsExactValues(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)

	m.ObserveDocument(metrics.OutcomeSuccess, "text/markdown", 20*time.Millisecond)
	m.ObserveDocument(metrics.OutcomeSuccess, "text/markdown", 30*time.Millisecond)
	m.ObserveDocument(metrics.OutcomeFailed, "", time.Second)
	m.ObserveStage(metrics.StageEmbed, 5*time.Millisecond)
	m.ObserveJobFinished("process", "completed", 2*time.Second)
	m.ObserveRPC("/pipeline.v1.JobService/GetJob", "NotFound", metrics.TransportREST, time.Millisecond)
	m.ObserveRPC("/pipeline.v1.JobService/GetJob", "OK", metrics.TransportGRPC, time.Millisecond)
	m.ObserveHTTP("/v1/jobs/{job_id}", "GET", 404, time.Millisecond)
	m.ObserveEmbed("embed", "", time.Millisecond)
	m.ObserveEmbed("embed", metrics.ErrorTransient, time.Millisecond)
	m.ObserveVector("upsert", metrics.ErrorPermanent, time.Millisecond)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_documents_processed_total Documents a worker finished, by outcome (success, failed, skipped) and content type (text/markdown, text/plain, text/html; unknown when it could not be loaded).
# TYPE pipeline_documents_processed_total counter
pipeline_documents_processed_total{content_type="text/markdown",outcome="success"} 2
pipeline_documents_processed_total{content_type="unknown",outcome="failed"} 1
# HELP pipeline_grpc_server_handled_total RPCs completed by the server, by service, method, status code and transport (grpc: a gRPC client; rest: the REST gateway on behalf of an HTTP request).
# TYPE pipeline_grpc_server_handled_total counter
pipeline_grpc_server_handled_total{code="NotFound",method="GetJob",service="pipeline.v1.JobService",transport="rest"} 1
pipeline_grpc_server_handled_total{code="OK",method="GetJob",service="pipeline.v1.JobService",transport="grpc"} 1
# HELP pipeline_http_requests_total HTTP requests on the HTTP port, by route pattern, method and status code.
# TYPE pipeline_http_requests_total counter
pipeline_http_requests_total{code="404",method="GET",route="/v1/jobs/{job_id}"} 1
# HELP pipeline_embedder_errors_total Failed embedder calls, by operation and kind (transient, permanent, canceled).
# TYPE pipeline_embedder_errors_total counter
pipeline_embedder_errors_total{kind="transient",operation="embed"} 1
# HELP pipeline_vector_store_errors_total Failed vector-store calls, by operation and kind (transient, permanent, canceled).
# TYPE pipeline_vector_store_errors_total counter
pipeline_vector_store_errors_total{kind="permanent",operation="upsert"} 1
# HELP pipeline_jobs_finished_total Jobs that reached a terminal status in this process, by type (crawl, process) and outcome (completed, failed, cancelled).
# TYPE pipeline_jobs_finished_total counter
pipeline_jobs_finished_total{outcome="completed",type="process"} 1
`), "pipeline_documents_processed_total", "pipeline_grpc_server_handled_total", "pipeline_http_requests_total",
		"pipeline_embedder_errors_total", "pipeline_vector_store_errors_total", "pipeline_jobs_finished_total"))

	// Histograms: counts per series.
	for name, want := range map[string]int{
		"pipeline_document_processing_duration_seconds": 2, // success, failed
		"pipeline_document_stage_duration_seconds":      1,
		"pipeline_embedder_request_duration_seconds":    1,
	} {
		n, err := testutil.GatherAndCount(reg, name)
		require.NoError(t, err)
		require.Equal(t, want, n, name)
	}
	require.Equal(t, 2, histogramCount(t, reg, "pipeline_embedder_request_duration_seconds"), "failed calls are timed too")
}

// histogramCount sums the observation counts of every series of a histogram.
func histogramCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	total := 0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += int(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func TestNamesFollowConventions(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	// Every family needs a series for the linter to see it.
	m.ObserveDocument(metrics.OutcomeSuccess, "text", time.Millisecond)
	m.ObserveStage(metrics.StageChunk, time.Millisecond)
	m.ObserveJobFinished("crawl", "failed", time.Second)
	busy, stop := m.WorkerStarted("w1", 3)
	defer stop()
	busy(1)
	m.ObserveRPC("/a.B/C", "OK", metrics.TransportGRPC, time.Millisecond)
	m.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	m.ObserveEmbed("embed", metrics.ErrorCanceled, time.Millisecond)
	m.ObserveVector("search", metrics.ErrorTransient, time.Millisecond)
	require.NoError(t, metrics.RegisterQueueCollector(reg, metrics.QueueReadings{
		Queue:   func(context.Context) (metrics.QueueStats, error) { return metrics.QueueStats{}, nil },
		Backlog: func(context.Context) (int, error) { return 0, nil },
	}))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), "go_") && !strings.HasPrefix(mf.GetName(), "process_") {
			require.True(t, strings.HasPrefix(mf.GetName(), "pipeline_"), mf.GetName())
		}
	}
}

func TestWorkerGauges(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	busy, stop := m.WorkerStarted("w1", 4)
	busy(1)
	busy(1)
	busy(-1)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_worker_busy_slots Batches a worker pool is working on now, per worker; divide by pipeline_worker_slots for utilization.
# TYPE pipeline_worker_busy_slots gauge
pipeline_worker_busy_slots{worker_id="w1"} 1
# HELP pipeline_worker_slots Batches a worker pool can work on at once (max concurrent jobs), per worker.
# TYPE pipeline_worker_slots gauge
pipeline_worker_slots{worker_id="w1"} 4
`), "pipeline_worker_busy_slots", "pipeline_worker_slots"))
	stop()
	n, err := testutil.GatherAndCount(reg, "pipeline_worker_busy_slots", "pipeline_worker_slots")
	require.NoError(t, err)
	require.Zero(t, n, "a stopped worker's series are gone")
}

func TestNilRecordsNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.ObserveDocument(metrics.OutcomeSuccess, "text", time.Second)
	m.ObserveStage(metrics.StageStore, time.Second)
	m.ObserveJobFinished("process", "completed", time.Second)
	m.ObserveRPC("/a.B/C", "OK", metrics.TransportGRPC, time.Second)
	m.ObserveHTTP("/", "GET", 200, time.Second)
	m.ObserveEmbed("embed", "", time.Second)
	m.ObserveVector("count", "", time.Second)
	busy, stop := m.WorkerStarted("w", 1)
	busy(1)
	stop()
}

func TestSplitMethod(t *testing.T) {
	t.Parallel()
	s, m := metrics.SplitMethod("/pipeline.v1.JobService/WatchJob")
	require.Equal(t, "pipeline.v1.JobService", s)
	require.Equal(t, "WatchJob", m)
	s, m = metrics.SplitMethod("weird")
	require.Equal(t, "unknown", s)
	require.Equal(t, "weird", m)
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	require.NoError(t, metrics.RegisterQueueCollector(reg, metrics.QueueReadings{
		Queue: func(context.Context) (metrics.QueueStats, error) {
			return metrics.QueueStats{Waiting: 3, InFlight: 2, Delayed: 1, OldestWaiting: 1500 * time.Millisecond, OldestInFlight: 4 * time.Second}, nil
		},
		Backlog: func(context.Context) (int, error) { return 7, nil },
	}))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_queue_messages Messages in the processing queue, by state: waiting (not handed to a worker yet), in_flight (handed out, not acknowledged), delayed (waiting for a retry's backoff).
# TYPE pipeline_queue_messages gauge
pipeline_queue_messages{state="delayed"} 1
pipeline_queue_messages{state="in_flight"} 2
pipeline_queue_messages{state="waiting"} 3
# HELP pipeline_queue_oldest_message_age_seconds Age of the oldest message in the processing queue, by state (waiting, in_flight), counted from when it (last) entered the queue; 0 when there is none.
# TYPE pipeline_queue_oldest_message_age_seconds gauge
pipeline_queue_oldest_message_age_seconds{state="in_flight"} 4
pipeline_queue_oldest_message_age_seconds{state="waiting"} 1.5
# HELP pipeline_processing_backlog_batches Batches of active processing jobs queued or running (from Postgres): the work the backpressure limit PIPELINE_MAX_BACKLOG_BATCHES counts.
# TYPE pipeline_processing_backlog_batches gauge
pipeline_processing_backlog_batches 7
# HELP pipeline_scrape_collector_success Whether a scrape-time reading succeeded (1) or failed or timed out (0), by collector (queue, backlog).
# TYPE pipeline_scrape_collector_success gauge
pipeline_scrape_collector_success{collector="backlog"} 1
pipeline_scrape_collector_success{collector="queue"} 1
`)))
}

// A reading that fails or hangs drops its own series, marks itself failed, and leaves the rest
// of the scrape intact, within the timeout.
func TestQueueCollectorFailuresAndTimeout(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	require.NoError(t, metrics.RegisterQueueCollector(reg, metrics.QueueReadings{
		Queue: func(ctx context.Context) (metrics.QueueStats, error) {
			<-ctx.Done() // Redis that never answers
			return metrics.QueueStats{}, ctx.Err()
		},
		Backlog: func(context.Context) (int, error) { return 0, errors.New("postgres away") },
		Timeout: 50 * time.Millisecond,
		Logger:  slog.New(slog.DiscardHandler),
	}))
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)
	require.Contains(t, text, `pipeline_scrape_collector_success{collector="queue"} 0`)
	require.Contains(t, text, `pipeline_scrape_collector_success{collector="backlog"} 0`)
	require.NotContains(t, text, "pipeline_queue_messages{")
	require.NotContains(t, text, "pipeline_processing_backlog_batches ")
	require.Contains(t, text, `pipeline_http_requests_total{code="200",method="GET",route="/healthz"} 1`)
}

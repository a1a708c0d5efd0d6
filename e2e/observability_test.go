package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
)

// observed is a service whose spans are recorded and whose logs are kept, with the faulty
// embedder inside the instrumented one, so its failures are counted as the embedder's.
type observed struct {
	*bundle
	spans *tracetest.SpanRecorder
	logs  *logtest.Buffer
}

func startObserved(t *testing.T, workers int) *observed {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr, err := telemetry.NewTracingWith(t.Context(), telemetry.TracingConfig{SampleRatio: 1}, sdktrace.WithSpanProcessor(rec))
	require.NoError(t, err)
	logs := &logtest.Buffer{}
	b := start(t, options{
		workers: workers,
		build:   app.Options{Tracing: tr},
		log:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		app: func(a *app.App) {
			fe := a.Embedder.(*faultyEmbedder)
			fe.Embedder = fe.Embedder.(interface{ Unwrap() embed.Embedder }).Unwrap()
			a.Embedder = telemetry.Embedder(fe, a.Metrics, a.Tracing.Provider)
		},
	})
	return &observed{bundle: b, spans: rec, logs: logs}
}

// histogramCounts maps each series of a histogram (by the value of label) to its count.
func histogramCounts(t *testing.T, g prometheus.Gatherer, name, label string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, m := range family(t, g, name) {
		out[labelOf(m, label)] += m.GetHistogram().GetSampleCount()
	}
	return out
}

func family(t *testing.T, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Processing real documents moves exactly the counters it should: three succeed, one fails
// permanently, one succeeds after two transient embedder failures; processing them again skips
// the unchanged ones.
func TestProcessingMovesTheCounters(t *testing.T) {
	t.Parallel()
	b := startObserved(t, 1)
	reg := b.app.Registry
	src := b.newSource(t)
	b.embedder.mu.Lock()
	b.embedder.transient["marker001"] = 2
	b.embedder.mu.Unlock()
	docs := []*pipelinev1.DocumentInput{doc(0, ""), doc(1, ""), doc(2, "PERMANENT-FAIL"), doc(3, "")}
	first := b.ingest(t, src, docs...)
	seen := b.watchUntilDone(t, first.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())
	second := b.ingest(t, src, docs...) // unchanged: skipped, but the bad one fails again
	seen = b.watchUntilDone(t, second.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())

	// A job's end is counted when it is announced, right after the commit that a watcher can
	// already see: poll for the last one.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_documents_processed_total Documents a worker finished, by outcome (success, failed, skipped) and content type (text/markdown, text/plain, text/html; unknown when it could not be loaded).
# TYPE pipeline_documents_processed_total counter
pipeline_documents_processed_total{content_type="text/markdown",outcome="success"} 3
pipeline_documents_processed_total{content_type="text/markdown",outcome="failed"} 2
pipeline_documents_processed_total{content_type="text/markdown",outcome="skipped"} 3
# HELP pipeline_embedder_errors_total Failed embedder calls, by operation and kind (transient, permanent, canceled).
# TYPE pipeline_embedder_errors_total counter
pipeline_embedder_errors_total{kind="permanent",operation="embed"} 2
pipeline_embedder_errors_total{kind="transient",operation="embed"} 2
# HELP pipeline_jobs_finished_total Jobs that reached a terminal status in this process, by type (crawl, process) and outcome (completed, failed, cancelled).
# TYPE pipeline_jobs_finished_total counter
pipeline_jobs_finished_total{outcome="completed",type="process"} 2
`), "pipeline_documents_processed_total", "pipeline_embedder_errors_total", "pipeline_jobs_finished_total"))
	}, 10*time.Second, 5*time.Millisecond)

	require.Equal(t, map[string]uint64{"success": 3, "failed": 2, "skipped": 3},
		histogramCounts(t, reg, "pipeline_document_processing_duration_seconds", "outcome"))
	// load: every document both times; chunk and embed: all four, then only the bad one;
	// store: the three good ones once.
	require.Equal(t, map[string]uint64{"load": 8, "chunk": 5, "embed": 5, "store": 3},
		histogramCounts(t, reg, "pipeline_document_stage_duration_seconds", "stage"))
	vec := histogramCounts(t, reg, "pipeline_vector_store_request_duration_seconds", "operation")
	require.EqualValues(t, 3, vec["upsert"])
	require.EqualValues(t, 3, vec["delete_document"])
	require.Empty(t, family(t, reg, "pipeline_vector_store_errors_total"))

	// One worker pool of max-concurrent-jobs slots, idle again.
	slots := family(t, reg, "pipeline_worker_slots")
	require.Len(t, slots, 1)
	require.EqualValues(t, b.cfg.MaxConcurrentJobs, slots[0].GetGauge().GetValue())
	require.Eventually(t, func() bool {
		busy := family(t, reg, "pipeline_worker_busy_slots")
		return len(busy) == 1 && busy[0].GetGauge().GetValue() == 0
	}, waitTimeout, 10*time.Millisecond)

	// The queue is empty and was read from Redis and Postgres at the scrape.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_queue_messages Messages in the processing queue, by state: waiting (not handed to a worker yet), in_flight (handed out, not acknowledged), delayed (waiting for a retry's backoff).
# TYPE pipeline_queue_messages gauge
pipeline_queue_messages{state="delayed"} 0
pipeline_queue_messages{state="in_flight"} 0
pipeline_queue_messages{state="waiting"} 0
# HELP pipeline_processing_backlog_batches Batches of active processing jobs queued or running (from Postgres): the work the backpressure limit PIPELINE_MAX_BACKLOG_BATCHES counts.
# TYPE pipeline_processing_backlog_batches gauge
pipeline_processing_backlog_batches 0
# HELP pipeline_scrape_collector_success Whether a scrape-time reading succeeded (1) or failed or timed out (0), by collector (queue, backlog).
# TYPE pipeline_scrape_collector_success gauge
pipeline_scrape_collector_success{collector="backlog"} 1
pipeline_scrape_collector_success{collector="queue"} 1
`), "pipeline_queue_messages", "pipeline_processing_backlog_batches", "pipeline_scrape_collector_success"))
}

// While workers are away the queue and backlog gauges show the waiting work.
func TestQueueGaugesShowWaitingWork(t *testing.T) {
	t.Parallel()
	// No workers, and no reconciler pass: the messages counted below are the job's own (a pass
	// may send another for a batch it takes for lost, a harmless duplicate that would make the
	// count uncertain).
	b := start(t, options{cfg: func(c *config.Config) { c.PollInterval = time.Hour }})
	src := b.newSource(t)
	var docs []*pipelinev1.DocumentInput
	for i := range 3 * b.cfg.BatchSize {
		docs = append(docs, doc(i, ""))
	}
	resp := b.ingest(t, src, docs...)
	require.NoError(t, testutil.GatherAndCompare(b.app.Registry, strings.NewReader(`
# HELP pipeline_queue_messages Messages in the processing queue, by state: waiting (not handed to a worker yet), in_flight (handed out, not acknowledged), delayed (waiting for a retry's backoff).
# TYPE pipeline_queue_messages gauge
pipeline_queue_messages{state="delayed"} 0
pipeline_queue_messages{state="in_flight"} 0
pipeline_queue_messages{state="waiting"} 3
# HELP pipeline_processing_backlog_batches Batches of active processing jobs queued or running (from Postgres): the work the backpressure limit PIPELINE_MAX_BACKLOG_BATCHES counts.
# TYPE pipeline_processing_backlog_batches gauge
pipeline_processing_backlog_batches 3
`), "pipeline_queue_messages", "pipeline_processing_backlog_batches"))

	// Then a worker takes them all.
	b.startWorker(t)
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())
	// The last message is acknowledged just after the job completes.
	require.Eventually(t, func() bool {
		for _, m := range family(t, b.app.Registry, "pipeline_queue_messages") {
			if m.GetGauge().GetValue() != 0 {
				return false
			}
		}
		return true
	}, waitTimeout, 10*time.Millisecond)
}

// spanTree indexes recorded spans by id.
type spanTree map[trace.SpanID]sdktrace.ReadOnlySpan

func (tr spanTree) ancestors(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for p, ok := tr[s.Parent().SpanID()]; ok; p, ok = tr[p.Parent().SpanID()] {
		names = append(names, p.Name())
	}
	return names
}

// One trace follows a job from IngestDocuments through the queue message into the worker and
// its embedder and vector-store calls, and the worker's logs carry its trace, job and source.
func TestOneTraceFromIngestToStore(t *testing.T) {
	t.Parallel()
	b := startObserved(t, 1)
	src := b.newSource(t)
	resp := b.ingest(t, src, doc(0, ""), doc(1, "PERMANENT-FAIL"))
	jobID := resp.GetJob().GetJobId()
	b.watchUntilDone(t, jobID)

	var ingest sdktrace.ReadOnlySpan
	tree := spanTree{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ingest = nil
		ended := b.spans.Ended()
		for _, s := range ended {
			tree[s.SpanContext().SpanID()] = s
			if s.Name() == "pipeline.v1.ContentService/IngestDocuments" && s.SpanKind() == trace.SpanKindServer {
				ingest = s
			}
		}
		// The batch's delivery span ends after its last report; wait for it, not for the span of
		// a duplicate delivery (the reconciler may enqueue a batch twice), which ends at once.
		var chains []string
		found := false
		for _, up := range byName(ended, "vector_store.upsert") {
			anc := tree.ancestors(up)
			chains = append(chains, strings.Join(anc, " < "))
			found = found || ingest != nil && len(anc) > 0 && anc[len(anc)-1] == ingest.Name()
		}
		// What a failure needs to be understood: each upsert's ancestors, and whether a lease
		// ran out or a batch was handed back (a second delivery then works under its own trace).
		assert.Truef(c, found, "no upsert under the IngestDocuments span (ingest span ended: %t); upserts' ancestors: %q; lease expiries: %d, hand-backs: %d",
			ingest != nil, chains, b.logs.Mentions("lease expired; batch goes back to the queue"), b.logs.Mentions("handing batch back"))
	}, waitTimeout, 10*time.Millisecond)
	traceID := ingest.SpanContext().TraceID()

	// Only this trace's spans (the search and source calls of the test make others).
	var inTrace []sdktrace.ReadOnlySpan
	for _, s := range b.spans.Ended() {
		if s.SpanContext().TraceID() == traceID {
			inTrace = append(inTrace, s)
		}
	}
	for name, want := range map[string]int{
		"queue.enqueue": 1, "worker.document": 2, "worker.load": 2, "worker.chunk": 2,
		"worker.embed": 2, "embedder.embed": 2, "worker.store": 1, "vector_store.upsert": 1, "vector_store.delete_document": 1,
	} {
		require.Len(t, byName(inTrace, name), want, name)
	}
	upsert := byName(inTrace, "vector_store.upsert")[0]
	require.Equal(t, []string{"worker.store", "worker.document", "queue.process", "queue.enqueue",
		"pipeline.v1.ContentService/IngestDocuments"}, tree.ancestors(upsert))
	for _, e := range byName(inTrace, "embedder.embed") {
		require.Equal(t, []string{"worker.embed", "worker.document", "queue.process", "queue.enqueue",
			"pipeline.v1.ContentService/IngestDocuments"}, tree.ancestors(e))
	}
	var failed int
	for _, d := range byName(inTrace, "worker.document") {
		outcome := ""
		for _, a := range d.Attributes() {
			if a.Key == "pipeline.outcome" {
				outcome = a.Value.AsString()
			}
		}
		if outcome == "failed" {
			failed++
			require.Equal(t, "Error", d.Status().Code.String())
		}
	}
	require.Equal(t, 1, failed)

	// Logs: the worker's lines carry the trace, the job and the source.
	for _, msg := range []string{"batch claimed", "document failed"} {
		recs := b.logs.Records(t, msg)
		require.Len(t, recs, 1, msg)
		require.Equal(t, traceID.String(), recs[0]["trace_id"], msg)
		require.NotEmpty(t, recs[0]["span_id"], msg)
		require.Equal(t, jobID, recs[0]["job_id"], msg)
		require.Equal(t, src, recs[0]["source_id"], msg)
	}
	rpc := b.logs.Records(t, "rpc")
	var ingestLogged bool
	for _, r := range rpc {
		if r["method"] == "/pipeline.v1.ContentService/IngestDocuments" {
			ingestLogged = true
			require.Equal(t, traceID.String(), r["trace_id"])
			require.Equal(t, src, r["source_id"])
		}
	}
	require.True(t, ingestLogged)
}

func byName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// A `pipeline worker` process serves its own /metrics on PIPELINE_METRICS_ADDR: its documents
// and slots, not the queue (the server reports that).
func TestWorkerProcessServesItsMetrics(t *testing.T) {
	t.Parallel()
	b := start(t, options{})
	fake := milvusfake.New(t)
	cfg := b.cfg
	cfg.VectorStore, cfg.MilvusAddr, cfg.MetricsAddr = "milvus", fake.Addr(), "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	w, err := app.Build(ctx, cfg, slog.New(slog.DiscardHandler), app.RoleWorker)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.RunWorkers(runCtx, b.grpcAddr, "") }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })

	resp := b.ingest(t, b.newSource(t), doc(7, ""))
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())

	require.NotEmpty(t, w.MetricsAddr())
	url := "http://" + w.MetricsAddr() + "/metrics"
	require.NoError(t, testutil.ScrapeAndCompare(url, strings.NewReader(`
# HELP pipeline_documents_processed_total Documents a worker finished, by outcome (success, failed, skipped) and content type (text/markdown, text/plain, text/html; unknown when it could not be loaded).
# TYPE pipeline_documents_processed_total counter
pipeline_documents_processed_total{content_type="text/markdown",outcome="success"} 1
`), "pipeline_documents_processed_total"))
	r, err := http.Get(url)
	require.NoError(t, err)
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	text := string(body)
	require.Contains(t, text, "pipeline_worker_slots{worker_id=")
	require.Contains(t, text, "pipeline_vector_store_request_duration_seconds_count{operation=\"upsert\"} 1")
	require.Contains(t, text, "go_goroutines")
	require.NotContains(t, text, "pipeline_queue_messages", "the queue is the servers' to report")
}

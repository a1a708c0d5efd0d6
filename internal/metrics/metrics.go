// Package metrics holds the service's Prometheus metrics: their names, labels and buckets in one
// place, and small methods the rest of the code calls to record what happened. A *Metrics is
// built on a registry the caller owns (one per process, one per test), never on Prometheus's
// global default registry. A nil *Metrics records nothing, so code paths and tests that do not
// care about metrics need not build one.
//
// The package knows nothing about jobs, queues or gRPC beyond the label values it is handed;
// scrape-time readings (queue depth, backlog) come in through the functions given to
// NewQueueCollector.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace starts every metric name.
const Namespace = "pipeline"

// Outcomes of one document (label outcome of the document metrics).
const (
	OutcomeSuccess = "success"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// Stages of one document's processing (label stage of pipeline_document_stage_duration_seconds).
const (
	StageLoad    = "load"
	StageConvert = "convert"
	StageChunk   = "chunk"
	StageEmbed   = "embed"
	StageStore   = "store"
)

// Error kinds of embedder and vector-store calls (label kind of the *_errors_total counters).
const (
	ErrorTransient = "transient"
	ErrorPermanent = "permanent"
	ErrorCanceled  = "canceled"
)

// Transports of an RPC (label transport of the gRPC metrics): a call from a gRPC client, or
// one the REST gateway made on behalf of an HTTP request.
const (
	TransportGRPC = "grpc"
	TransportREST = "rest"
)

var (
	// documentBuckets span a one-line note (milliseconds) to a large document on a slow
	// embedding server (minutes).
	documentBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	// callBuckets fit RPCs and calls to the embedder and vector store.
	callBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// jobBuckets span a job of one document to one of a large crawl.
	jobBuckets = []float64{.1, .5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 4 * 3600}
)

// Metrics are the service's collectors. Build with New; the zero value is not usable, a nil
// pointer is (it records nothing).
type Metrics struct {
	documentDuration *prometheus.HistogramVec
	documents        *prometheus.CounterVec
	stageDuration    *prometheus.HistogramVec

	jobsFinished *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec

	workerSlots *prometheus.GaugeVec
	workerBusy  *prometheus.GaugeVec

	rpcHandled  *prometheus.CounterVec
	rpcDuration *prometheus.HistogramVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	embedDuration  *prometheus.HistogramVec
	embedErrors    *prometheus.CounterVec
	vectorDuration *prometheus.HistogramVec
	vectorErrors   *prometheus.CounterVec
}

// NewRegistry returns a registry with the Go runtime and process collectors, for a process's
// /metrics. Tests use prometheus.NewRegistry() or this, never the global default.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A collector that fails (Redis away) drops its own series, not the whole scrape.
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// New builds the collectors and registers them on reg. It panics if reg already holds them
// (a wiring mistake, found at start).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		documentDuration: histogram("document_processing_duration_seconds", documentBuckets,
			"Time a worker spent on one document (load, convert, chunk, embed, store, including retries), by outcome.",
			"outcome"),
		documents: counter("documents_processed_total",
			"Documents a worker finished, by outcome (success, failed, skipped) and content type (text/markdown, text/plain, text/html; unknown when it could not be loaded).",
			"outcome", "content_type"),
		stageDuration: histogram("document_stage_duration_seconds", documentBuckets,
			"Time one document spent in one processing stage (load, convert, chunk, embed, store), including retries.",
			"stage"),

		jobsFinished: counter("jobs_finished_total",
			"Jobs that reached a terminal status in this process, by type (crawl, process) and outcome (completed, failed, cancelled).",
			"type", "outcome"),
		jobDuration: histogram("job_duration_seconds", jobBuckets,
			"Time from a job's creation to its terminal status, by type and outcome.",
			"type", "outcome"),

		workerSlots: gauge("worker_slots",
			"Batches a worker pool can work on at once (max concurrent jobs), per worker.",
			"worker_id"),
		workerBusy: gauge("worker_busy_slots",
			"Batches a worker pool is working on now, per worker; divide by pipeline_worker_slots for utilization.",
			"worker_id"),

		rpcHandled: counter("grpc_server_handled_total",
			"RPCs completed by the server, by service, method, status code and transport (grpc: a gRPC client; rest: the REST gateway on behalf of an HTTP request).",
			"service", "method", "code", "transport"),
		rpcDuration: histogram("grpc_server_handling_seconds", callBuckets,
			"Time from an RPC's start to its end (a stream's whole life), by service, method and transport.",
			"service", "method", "transport"),

		httpRequests: counter("http_requests_total",
			"HTTP requests on the HTTP port, by route pattern, method and status code.",
			"route", "method", "code"),
		httpDuration: histogram("http_request_duration_seconds", callBuckets,
			"Time to serve an HTTP request (a streamed watch's whole life), by route pattern and method.",
			"route", "method"),

		embedDuration: histogram("embedder_request_duration_seconds", callBuckets,
			"Time of one call to the embedder, successful or not, by operation.",
			"operation"),
		embedErrors: counter("embedder_errors_total",
			"Failed embedder calls, by operation and kind (transient, permanent, canceled).",
			"operation", "kind"),
		vectorDuration: histogram("vector_store_request_duration_seconds", callBuckets,
			"Time of one call to the vector store, successful or not, by operation.",
			"operation"),
		vectorErrors: counter("vector_store_errors_total",
			"Failed vector-store calls, by operation and kind (transient, permanent, canceled).",
			"operation", "kind"),
	}
	reg.MustRegister(
		m.documentDuration, m.documents, m.stageDuration,
		m.jobsFinished, m.jobDuration,
		m.workerSlots, m.workerBusy,
		m.rpcHandled, m.rpcDuration,
		m.httpRequests, m.httpDuration,
		m.embedDuration, m.embedErrors, m.vectorDuration, m.vectorErrors,
	)
	return m
}

func histogram(name string, buckets []float64, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

// ObserveDocument records one finished document.
func (m *Metrics) ObserveDocument(outcome, contentType string, d time.Duration) {
	if m == nil {
		return
	}
	if contentType == "" {
		contentType = "unknown"
	}
	m.documents.WithLabelValues(outcome, contentType).Inc()
	m.documentDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveStage records the time one document spent in one stage.
func (m *Metrics) ObserveStage(stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.stageDuration.WithLabelValues(stage).Observe(d.Seconds())
}

// ObserveJobFinished records a job that reached a terminal status after running for d.
func (m *Metrics) ObserveJobFinished(jobType, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.jobsFinished.WithLabelValues(jobType, outcome).Inc()
	m.jobDuration.WithLabelValues(jobType, outcome).Observe(max(d, 0).Seconds())
}

// WorkerStarted records a worker pool with slots slots and returns the functions that mark a
// slot busy and free. stop removes the worker's series (it is gone, not idle).
func (m *Metrics) WorkerStarted(workerID string, slots int) (busy func(delta int), stop func()) {
	if m == nil {
		return func(int) {}, func() {}
	}
	m.workerSlots.WithLabelValues(workerID).Set(float64(slots))
	g := m.workerBusy.WithLabelValues(workerID)
	g.Set(0)
	return func(delta int) { g.Add(float64(delta)) }, func() {
		m.workerSlots.DeleteLabelValues(workerID)
		m.workerBusy.DeleteLabelValues(workerID)
	}
}

// ObserveRPC records a finished RPC. fullMethod is gRPC's "/package.Service/Method".
func (m *Metrics) ObserveRPC(fullMethod, code, transport string, d time.Duration) {
	if m == nil {
		return
	}
	service, method := SplitMethod(fullMethod)
	m.rpcHandled.WithLabelValues(service, method, code, transport).Inc()
	m.rpcDuration.WithLabelValues(service, method, transport).Observe(d.Seconds())
}

// SplitMethod splits "/package.Service/Method" into "package.Service" and "Method".
func SplitMethod(fullMethod string) (service, method string) {
	s := fullMethod
	if len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "unknown", s
}

// ObserveHTTP records a served HTTP request. route is the matched pattern ("/v1/jobs/{job_id}"),
// never the raw path, so the series stay few.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, method, statusText(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveEmbed records one embedder call; errKind is "" for a success.
func (m *Metrics) ObserveEmbed(operation, errKind string, d time.Duration) {
	if m == nil {
		return
	}
	m.embedDuration.WithLabelValues(operation).Observe(d.Seconds())
	if errKind != "" {
		m.embedErrors.WithLabelValues(operation, errKind).Inc()
	}
}

// ObserveVector records one vector-store call; errKind is "" for a success.
func (m *Metrics) ObserveVector(operation, errKind string, d time.Duration) {
	if m == nil {
		return
	}
	m.vectorDuration.WithLabelValues(operation).Observe(d.Seconds())
	if errKind != "" {
		m.vectorErrors.WithLabelValues(operation, errKind).Inc()
	}
}

// statusText is an HTTP status as a label value, from a fixed set.
func statusText(code int) string {
	if code < 100 || code > 599 {
		return "unknown"
	}
	return strconv.Itoa(code)
}

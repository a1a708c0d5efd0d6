package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
	"github.com/pipeline-dev/pipeline/server"
)

const (
	grpcHandledHeader = `# HELP pipeline_grpc_server_handled_total RPCs completed by the server, by service, method, status code and transport (grpc: a gRPC client; rest: the REST gateway on behalf of an HTTP request).
# TYPE pipeline_grpc_server_handled_total counter
`
	httpRequestsHeader = `# HELP pipeline_http_requests_total HTTP requests on the HTTP port, by route pattern, method and status code.
# TYPE pipeline_http_requests_total counter
`
	jobsFinishedHeader = `# HELP pipeline_jobs_finished_total Jobs that reached a terminal status in this process, by type (crawl, process) and outcome (completed, failed, cancelled).
# TYPE pipeline_jobs_finished_total counter
`
)

// A REST call is counted once per family: as its route in the HTTP metrics and as its method
// with transport="rest" in the gRPC metrics; gRPC clients' calls are transport="grpc". Read from
// /metrics as a scraper does.
func TestRequestMetricsByMethodRouteAndTransport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	missing := uuid.NewString()
	_, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: missing})
	requireCode(t, err, codes.NotFound, "")

	code, _ := b.do(t, http.MethodGet, "/v1/jobs/"+missing, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = b.do(t, http.MethodGet, "/v1/jobs/not-a-uuid", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = b.do(t, http.MethodGet, "/v1/no/such/thing/"+uuid.NewString(), "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, code)

	require.NoError(t, testutil.ScrapeAndCompare(b.baseURL+"/metrics", strings.NewReader(grpcHandledHeader+`
pipeline_grpc_server_handled_total{code="NotFound",method="GetJob",service="pipeline.v1.JobService",transport="grpc"} 1
pipeline_grpc_server_handled_total{code="NotFound",method="GetJob",service="pipeline.v1.JobService",transport="rest"} 1
pipeline_grpc_server_handled_total{code="InvalidArgument",method="GetJob",service="pipeline.v1.JobService",transport="rest"} 1
`+httpRequestsHeader+`
pipeline_http_requests_total{code="404",method="GET",route="/v1/jobs/{job_id}"} 1
pipeline_http_requests_total{code="400",method="GET",route="/v1/jobs/{job_id}"} 1
pipeline_http_requests_total{code="404",method="GET",route="unmatched"} 1
pipeline_http_requests_total{code="200",method="GET",route="/healthz"} 1
`), "pipeline_grpc_server_handled_total", "pipeline_http_requests_total"))

	// The scrape itself is counted under its own route.
	require.NoError(t, testutil.ScrapeAndCompare(b.baseURL+"/metrics", strings.NewReader(httpRequestsHeader+`
pipeline_http_requests_total{code="404",method="GET",route="/v1/jobs/{job_id}"} 1
pipeline_http_requests_total{code="400",method="GET",route="/v1/jobs/{job_id}"} 1
pipeline_http_requests_total{code="404",method="GET",route="unmatched"} 1
pipeline_http_requests_total{code="200",method="GET",route="/healthz"} 1
pipeline_http_requests_total{code="200",method="GET",route="/metrics"} 1
`), "pipeline_http_requests_total"))
}

// Jobs are counted once, when they reach a terminal status, by type and outcome.
func TestFinishedJobsAreCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.completedJob(t)
	pending := b.pendingJob(t, 1)
	code, _ := b.do(t, http.MethodPost, "/v1/jobs/"+pending.GetJob().GetJobId()+":cancel", "")
	require.Equal(t, http.StatusOK, code)
	code, _ = b.do(t, http.MethodPost, "/v1/jobs/"+pending.GetJob().GetJobId()+":cancel", "")
	require.Equal(t, http.StatusOK, code, "cancelling twice answers the cancelled job, without a write")

	require.NoError(t, testutil.ScrapeAndCompare(b.baseURL+"/metrics", strings.NewReader(jobsFinishedHeader+`
pipeline_jobs_finished_total{outcome="completed",type="process"} 1
pipeline_jobs_finished_total{outcome="cancelled",type="process"} 1
`), "pipeline_jobs_finished_total"))
	require.NoError(t, testutil.ScrapeAndCompare(b.baseURL+"/metrics", strings.NewReader(httpRequestsHeader+`
pipeline_http_requests_total{code="200",method="POST",route="/v1/jobs/{job_id}:cancel"} 2
pipeline_http_requests_total{code="200",method="GET",route="/metrics"} 1
`), "pipeline_http_requests_total"))
}

// A caller's traceparent is continued over gRPC and over REST (HTTP span -> the gateway's
// client span -> the server span), and the call's log line carries the trace and the job.
func TestTracesContinueTheCallersTraceOverGRPCAndREST(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	logs := &logtest.Buffer{}
	b := setupDeps(t, func(d *server.Deps) {
		d.TracerProvider = tp
		d.Log = slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, nil)))
	})

	// The caller's own span, sent as traceparent.
	caller, callerSpan := sdktrace.NewTracerProvider().Tracer("client").Start(t.Context(), "client")
	callerSpan.End()
	carrier := map[string]string{}
	telemetry.Propagator.Inject(caller, propagation.MapCarrier(carrier))
	traceID := callerSpan.SpanContext().TraceID()

	jobID := uuid.NewString()
	ctx := metadata.AppendToOutgoingContext(tctx(t), "traceparent", carrier["traceparent"])
	_, err := b.jobs.GetJob(ctx, &pipelinev1.GetJobRequest{JobId: jobID})
	requireCode(t, err, codes.NotFound, "")
	code, _ := b.do(t, http.MethodGet, "/v1/jobs/"+jobID, "", "traceparent", carrier["traceparent"])
	require.Equal(t, http.StatusNotFound, code)

	var server, httpSpans, clientSpans []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		server, httpSpans, clientSpans = nil, nil, nil
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == "pipeline.v1.JobService/GetJob" && s.SpanKind() == trace.SpanKindServer:
				server = append(server, s)
			case s.Name() == "pipeline.v1.JobService/GetJob" && s.SpanKind() == trace.SpanKindClient:
				clientSpans = append(clientSpans, s)
			case s.Name() == "GET /v1/jobs/{job_id}":
				httpSpans = append(httpSpans, s)
			}
		}
		return len(server) == 2 && len(httpSpans) == 1 && len(clientSpans) == 1
	}, waitTimeout, 10*time.Millisecond)
	for _, s := range append(append(server, httpSpans...), clientSpans...) {
		require.Equal(t, traceID, s.SpanContext().TraceID(), s.Name())
	}
	require.Equal(t, callerSpan.SpanContext().SpanID(), httpSpans[0].Parent().SpanID())
	require.Equal(t, httpSpans[0].SpanContext().SpanID(), clientSpans[0].Parent().SpanID())
	parents := []trace.SpanID{server[0].Parent().SpanID(), server[1].Parent().SpanID()}
	require.ElementsMatch(t, []trace.SpanID{callerSpan.SpanContext().SpanID(), clientSpans[0].SpanContext().SpanID()}, parents)

	rpcLogs := logs.Records(t, "rpc")
	require.Len(t, rpcLogs, 2)
	for _, l := range rpcLogs {
		require.Equal(t, traceID.String(), l["trace_id"])
		require.Equal(t, jobID, l["job_id"])
		require.Equal(t, "NotFound", l["code"])
	}
}

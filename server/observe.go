package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"

	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
)

// Observability of the API: request metrics (gRPC by method, code and transport; HTTP by route
// pattern, method and status), spans (otelgrpc on the gRPC server and on the gateway's calls to
// it, and one span per HTTP request here), and the ids on the log context.
//
// A REST call is one HTTP request and one RPC the gateway makes for it. Each metric family
// counts it once: pipeline_http_requests_total as its route, pipeline_grpc_server_handled_total
// as its method with transport="rest". Summing the two families would count it twice.

const tracerName = "github.com/pipeline-dev/pipeline/server"

// tracingOn reports whether spans are recorded; without a provider the server adds no tracing
// code to any call.
func (s *Server) tracingOn() bool { return s.deps.TracerProvider != nil }

// newStatsHandlers returns otelgrpc's server and client stats handlers, nil when tracing is off.
// The server's adds a span to every RPC, continuing a caller's trace from the traceparent
// metadata; the client's makes the gateway's calls carry the HTTP request's span to the server.
// The gRPC server and its in-process connection use them, and so do the gateway's in-process
// calls (gateway.go), which call them as grpc would.
func (s *Server) newStatsHandlers() (server, client stats.Handler) {
	if !s.tracingOn() {
		return nil, nil
	}
	server = otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(s.deps.TracerProvider),
		otelgrpc.WithPropagators(telemetry.Propagator),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool { return !quietMethod(info.FullMethodName) }),
	)
	client = otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(s.deps.TracerProvider),
		otelgrpc.WithPropagators(telemetry.Propagator),
	)
	return server, client
}

// traceServerOption adds the server stats handler to the gRPC server.
func (s *Server) traceServerOption() grpc.ServerOption {
	if s.serverStats == nil {
		return grpc.EmptyServerOption{}
	}
	return grpc.StatsHandler(s.serverStats)
}

// traceDialOption adds the client stats handler to the gateway's in-process connection.
func (s *Server) traceDialOption() grpc.DialOption {
	if s.clientStats == nil {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithStatsHandler(s.clientStats)
}

// transportOf tells the gateway's calls (in process, gateway.go) from gRPC clients'.
func transportOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && p.Addr.Network() == inprocNetwork {
		return metrics.TransportREST
	}
	return metrics.TransportGRPC
}

// requestLogAttrs puts the job and source a request names on the log context, so every line
// logged while serving it carries them.
func requestLogAttrs(ctx context.Context, req any) context.Context {
	var attrs []slog.Attr
	if r, ok := req.(interface{ GetJobId() string }); ok && r.GetJobId() != "" {
		attrs = append(attrs, slog.String(telemetry.KeyJobID, r.GetJobId()))
	}
	if r, ok := req.(interface{ GetSourceId() string }); ok && r.GetSourceId() != "" {
		attrs = append(attrs, slog.String(telemetry.KeySourceID, r.GetSourceId()))
	}
	return telemetry.WithLogAttrs(ctx, attrs...)
}

// --- HTTP

// routeKey holds, on an HTTP request's context, where the gateway writes the route pattern it
// matched (the net/http mux only knows it sent the request to the gateway).
type routeKey struct{}

type routeHolder struct{ route string }

// gatewayRoute is a gateway middleware that reports the matched pattern, as written in the
// protos' google.api.http rules ("/v1/jobs/{job_id}:watch").
func gatewayRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				h.route = strings.ReplaceAll(p.String(), "=*}", "}")
			}
		}
		next(w, r, params)
	}
}

// routeUnmatched labels requests no route took (404s, wrong methods), so scanners cannot mint
// new series.
const routeUnmatched = "unmatched"

// observeHTTP wraps the HTTP port's mux: it times and counts every request by route pattern,
// method and status, and, with tracing on, serves it in a server span that continues the
// caller's traceparent.
func (s *Server) observeHTTP(mux *http.ServeMux) http.Handler {
	var tracer trace.Tracer
	if s.tracingOn() {
		tracer = s.deps.TracerProvider.Tracer(tracerName)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, pattern := mux.Handler(r)
		holder := &routeHolder{}
		ctx := context.WithValue(r.Context(), routeKey{}, holder)
		method := methodLabel(r.Method)
		var span trace.Span
		if tracer != nil {
			ctx = telemetry.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", r.Method),
					attribute.String("url.path", r.URL.Path),
				))
		}
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r.WithContext(ctx))

		route := routeOf(pattern, holder.route)
		code := rec.code()
		s.deps.Metrics.ObserveHTTP(route, method, code, time.Since(start))
		if span != nil {
			span.SetName(method + " " + route)
			span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(otelcodes.Error, http.StatusText(code))
			}
			span.End()
		}
	})
}

// routeOf is the route label: the mux's pattern without its method, or for the gateway ("/")
// the pattern the gateway matched.
func routeOf(muxPattern, gatewayPattern string) string {
	_, path, found := strings.Cut(muxPattern, " ")
	if !found {
		path = muxPattern
	}
	switch path {
	case "":
		return routeUnmatched
	case "/":
		if gatewayPattern == "" {
			return routeUnmatched
		}
		return gatewayPattern
	}
	return path
}

// methodLabel keeps the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// statusRecorder remembers the status written. It passes Flush on (streamed watches need it)
// and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK // nothing written: net/http sends 200
	}
	return r.status
}

package telemetry_test

import (
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/pipeline-dev/pipeline/internal/telemetry"
)

func TestTracingOffIsANoOp(t *testing.T) {
	t.Parallel()
	tr, err := telemetry.NewTracing(t.Context(), telemetry.TracingConfig{})
	require.NoError(t, err)
	require.False(t, tr.Enabled)
	_, span := tr.Provider.Tracer("t").Start(t.Context(), "x")
	require.False(t, span.IsRecording())
	require.False(t, span.SpanContext().IsValid(), "no ids are made up")
	require.NoError(t, tr.Shutdown(t.Context()))
}

func TestRefusesAnUnknownProtocol(t *testing.T) {
	t.Parallel()
	_, err := telemetry.NewTracing(t.Context(), telemetry.TracingConfig{Endpoint: "127.0.0.1:4317", Protocol: "carrier-pigeon"})
	require.ErrorContains(t, err, "PIPELINE_OTLP_PROTOCOL")
}

// exported is what a test collector received.
type exported struct {
	mu       sync.Mutex
	spans    []string
	services []string
	headers  []string
}

func (e *exported) add(req *collectortrace.ExportTraceServiceRequest, header string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.headers = append(e.headers, header)
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				e.services = append(e.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				e.spans = append(e.spans, s.GetName())
			}
		}
	}
}

func (e *exported) snapshot() (spans, services, headers []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.spans...), append([]string(nil), e.services...), append([]string(nil), e.headers...)
}

// grpcCollector is an OTLP/gRPC trace receiver.
type grpcCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	got *exported
}

func (c *grpcCollector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := ""
	if v := md.Get("x-api-key"); len(v) > 0 {
		h = v[0]
	}
	c.got.add(req, h)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// emit records one span and shuts the provider down, which exports it.
func emit(t *testing.T, cfg telemetry.TracingConfig) {
	t.Helper()
	tr, err := telemetry.NewTracing(t.Context(), cfg)
	require.NoError(t, err)
	require.True(t, tr.Enabled)
	_, span := tr.Provider.Tracer("t").Start(t.Context(), "process batch")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tr.Shutdown(ctx))
}

func TestExportsOverOTLPGRPC(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	got := &exported{}
	collectortrace.RegisterTraceServiceServer(srv, &grpcCollector{got: got})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	emit(t, telemetry.TracingConfig{
		Endpoint: lis.Addr().String(), Protocol: "grpc", Insecure: true, SampleRatio: 1,
		Headers: map[string]string{"x-api-key": "collector-key"}, Role: "worker",
	})
	spans, services, headers := got.snapshot()
	require.Equal(t, []string{"process batch"}, spans)
	require.Equal(t, []string{"pipeline"}, services)
	require.Equal(t, []string{"collector-key"}, headers)
}

// OTLP/HTTP to a TLS collector trusted through the CA file, the endpoint given as a URL without
// a path (the standard /v1/traces is used).
func TestExportsOverOTLPHTTPWithTLS(t *testing.T) {
	t.Parallel()
	got := &exported{}
	paths := make(chan string, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.URL.Path
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.add(&req, r.Header.Get("X-Api-Key"))
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	emit(t, telemetry.TracingConfig{
		Endpoint: srv.URL, Protocol: "http", CAFile: caFile, SampleRatio: 1,
		Headers: map[string]string{"X-Api-Key": "k"}, ServiceName: "pipeline-test",
	})
	spans, services, headers := got.snapshot()
	require.Equal(t, []string{"process batch"}, spans)
	require.Equal(t, []string{"pipeline-test"}, services)
	require.Equal(t, []string{"k"}, headers)
	require.Equal(t, "/v1/traces", <-paths)
}

func TestSampleRatioZeroRecordsNothingNew(t *testing.T) {
	t.Parallel()
	tr, err := telemetry.NewTracingWith(t.Context(), telemetry.TracingConfig{SampleRatio: 0})
	require.NoError(t, err)
	_, span := tr.Provider.Tracer("t").Start(t.Context(), "x")
	require.False(t, span.IsRecording())
	require.True(t, span.SpanContext().IsValid(), "ids still flow for logs and callees")
	require.NoError(t, tr.Shutdown(t.Context()))
}

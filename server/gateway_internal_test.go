package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/metrics"
)

// The gateway's in-process calls (gateway.go), at the seam: a test method behind the server's
// real interceptor chain. Its request and response are health messages, which carry a free-form
// string and have no validation rules. What the handler does is chosen by the request's service.
const testMethod = "/pipeline.test.Echo/Call"

type testKey struct{}

type gatewayBundle struct {
	conn    *gatewayConn
	streams *recordingConn
	seen    chan context.Context // the handler's context, once per call
}

// recordingConn stands in for the in-process gRPC connection: it notes what reaches it.
type recordingConn struct{ invoked, streamed []string }

func (r *recordingConn) Invoke(_ context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	r.invoked = append(r.invoked, method)
	return nil
}

func (r *recordingConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	r.streamed = append(r.streamed, method)
	return nil, errors.New("no streams here")
}

func setupGateway(t *testing.T) *gatewayBundle {
	t.Helper()
	s, err := New(config.Default(), Deps{Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	b := &gatewayBundle{streams: &recordingConn{}, seen: make(chan context.Context, 1)}
	handle := func(ctx context.Context, req any) (any, error) {
		b.seen <- ctx
		in := req.(*healthpb.HealthCheckRequest)
		switch in.GetService() {
		case "panic":
			panic("handler panicked")
		case "plain error":
			return nil, errors.New("a detail callers must not see")
		case "metadata":
			require.NoError(t, grpc.SetHeader(ctx, metadata.Pairs("h", "1")))
			require.NoError(t, grpc.SetTrailer(ctx, metadata.Pairs("t", "2")))
		case "wait":
			<-ctx.Done()
			return nil, ctx.Err()
		case "big":
			return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
		}
		in.Service = "changed by the handler"
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	s.unary[testMethod] = unaryMethod{impl: struct{}{}, handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := new(healthpb.HealthCheckRequest)
		if err := dec(in); err != nil {
			return nil, err
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: testMethod}, handle)
	}}
	b.conn = &gatewayConn{methods: s.unary, chain: s.chain, streams: b.streams, maxRequest: 100, maxResponse: 1 << 20}
	return b
}

func (b *gatewayBundle) call(ctx context.Context, service string, opts ...grpc.CallOption) (*healthpb.HealthCheckResponse, error) {
	out := new(healthpb.HealthCheckResponse)
	err := b.conn.Invoke(ctx, testMethod, &healthpb.HealthCheckRequest{Service: service}, out, opts...)
	return out, err
}

func TestGatewayCallsGetTheirOwnContext(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	ctx, cancel := context.WithTimeout(context.WithValue(t.Context(), testKey{}, "the HTTP side's"), time.Minute)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer k", "x-forwarded-for", "203.0.113.7")
	req := &healthpb.HealthCheckRequest{Service: "ok"}
	out := new(healthpb.HealthCheckResponse)
	require.NoError(t, b.conn.Invoke(ctx, testMethod, req, out))
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, out.GetStatus(), "the response is copied to the reply")
	require.Equal(t, "ok", req.GetService(), "the handler works on a copy of the request")

	hctx := <-b.seen
	in, ok := metadata.FromIncomingContext(hctx)
	require.True(t, ok)
	require.Equal(t, []string{"Bearer k"}, in.Get("authorization"))
	require.Equal(t, []string{"203.0.113.7"}, in.Get("x-forwarded-for"))
	_, ok = metadata.FromOutgoingContext(hctx)
	require.False(t, ok, "nothing the caller sent goes out again on the handler's own calls")
	require.Nil(t, hctx.Value(testKey{}), "none of the HTTP side's values")
	p, ok := peer.FromContext(hctx)
	require.True(t, ok)
	require.Equal(t, metrics.TransportREST, transportOf(hctx), "peer %v", p.Addr)
	want, _ := ctx.Deadline()
	got, ok := hctx.Deadline()
	require.True(t, ok)
	require.Equal(t, want, got, "the caller's deadline")
	method, ok := grpc.Method(hctx)
	require.True(t, ok)
	require.Equal(t, testMethod, method)

	require.Error(t, hctx.Err(), "the handler's context ends with the call")

	// A caller that goes away cancels the handler's context.
	cctx, cancelCall := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := b.call(cctx, "wait"); done <- err }()
	<-b.seen
	cancelCall()
	require.Equal(t, codes.Canceled, status.Code(<-done))

	// No deadline from the caller: the server's default one.
	_, err := b.call(t.Context(), "ok")
	require.NoError(t, err)
	_, ok = (<-b.seen).Deadline()
	require.True(t, ok, "the default deadline")
}

func TestGatewayCallsGoThroughTheChain(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)

	_, err := b.call(t.Context(), "panic")
	<-b.seen
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, internalMessage, status.Convert(err).Message(), "recovery")

	_, err = b.call(t.Context(), "plain error")
	<-b.seen
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, internalMessage, status.Convert(err).Message(), "error mapping masks it")

	var header, trailer metadata.MD
	_, err = b.call(t.Context(), "metadata", grpc.Header(&header), grpc.Trailer(&trailer))
	<-b.seen
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, header.Get("h"))
	require.Equal(t, []string{"2"}, trailer.Get("t"))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = b.call(ctx, "ok")
	require.Equal(t, codes.Canceled, status.Code(err), "no call on a finished context")
}

func TestGatewayMessageLimits(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	_, err := b.call(t.Context(), strings.Repeat("x", 200))
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "larger than max")
	require.Empty(t, b.seen, "refused before the handler")

	b.conn.maxResponse = 1
	_, err = b.call(t.Context(), "big")
	<-b.seen
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "larger than max")
}

func TestGatewayStreamsAndOtherMethodsUseTheConnection(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	require.NoError(t, b.conn.Invoke(t.Context(), "/pipeline.test.Echo/Unknown", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}))
	_, err := b.conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/pipeline.v1.JobService/WatchJob")
	require.Error(t, err)
	require.Equal(t, []string{"/pipeline.test.Echo/Unknown"}, b.streams.invoked)
	require.Equal(t, []string{"/pipeline.v1.JobService/WatchJob"}, b.streams.streamed)
}

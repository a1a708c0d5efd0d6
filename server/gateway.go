package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The REST gateway reaches the services through gatewayConn. A unary call (every REST route but
// WatchJob) runs in this goroutine: the gateway's request message goes to the method's handler
// through the server's own interceptor chain, with none of the gRPC hop a connection costs (the
// binary encoding of request and response both ways, HTTP/2 framing, a goroutine per stream).
// Streams (WatchJob) still go through the in-process gRPC connection: they are long-lived, so
// the hop costs them nothing that matters, and grpc-gateway needs a real client stream for them.
//
// What a gRPC server does around a unary handler is done here too, so a REST call is handled
// exactly as before (docs/decisions/0014-rest-calls-the-handlers-in-process.md):
//   - the handler gets a context of its own, as grpc gives it: the HTTP request's deadline and
//     cancellation, none of its values; the gateway's outgoing metadata (the caller's headers:
//     authorization, x-forwarded-for, traceparent) becomes incoming metadata, so nothing the
//     caller sent rides on to the calls the handler makes (Milvus);
//   - the peer is the in-process network, so metrics say transport="rest" and the rate limiter
//     reads the caller's address from x-forwarded-for;
//   - the one interceptor chain the gRPC server runs (unaryChain: recovery, logging and metrics,
//     error mapping, default deadline, auth, rate limit, validation);
//   - the message size limits: the server's for the request, the gateway connection's for the
//     response, with grpc's codes and messages;
//   - the stats handlers (otelgrpc tracing): the gateway's client span and the server span, with
//     the caller's trace carried from one to the other as traceparent metadata;
//   - a handler's grpc.SetHeader and SetTrailer reach the gateway's Header and Trailer options.
// The one difference a caller can see: gRPC's own response header (content-type
// application/grpc) no longer shows up as Grpc-Metadata-Content-Type in REST responses.

// gatewayMaxResponseBytes bounds a response the gateway takes from a service, as the call
// option of its former gRPC connection did.
const gatewayMaxResponseBytes = 64 << 20

// unaryMethod is a registered unary method: the service and grpc's handler for it.
type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

// gatewayConn is the gateway's grpc.ClientConnInterface (see the top of this file).
type gatewayConn struct {
	methods map[string]unaryMethod // by full method name
	chain   grpc.UnaryServerInterceptor
	streams grpc.ClientConnInterface // the in-process gRPC connection
	// maxRequest is the server's MaxRecvMsgSize; maxResponse the gateway's receive limit.
	maxRequest, maxResponse int
	// clientStats and serverStats are the stats handlers of the gRPC connection and server;
	// nil when tracing is off.
	clientStats, serverStats stats.Handler
}

func (c *gatewayConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.streams.NewStream(ctx, desc, method, opts...)
}

func (c *gatewayConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) (err error) {
	m, ok := c.methods[method]
	if !ok {
		return c.streams.Invoke(ctx, method, args, reply, opts...)
	}
	if c.clientStats != nil {
		ctx = c.clientStats.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
		c.clientStats.HandleRPC(ctx, &stats.Begin{Client: true, BeginTime: time.Now()})
		c.clientStats.HandleRPC(ctx, &stats.OutHeader{Client: true, FullMethod: method, RemoteAddr: gatewayPeer.Addr, LocalAddr: gatewayPeer.Addr})
		defer func() {
			c.clientStats.HandleRPC(ctx, &stats.End{Client: true, EndTime: time.Now(), Error: err})
		}()
	}
	if err := ctx.Err(); err != nil { // as a gRPC client does: no call on a finished context
		return status.FromContextError(err).Err()
	}
	req, ok1 := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		return status.Errorf(codes.Internal, "gateway: %s called with %T, %T: not protobuf messages", method, args, reply)
	}
	if n := proto.Size(req); n > c.maxRequest {
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, c.maxRequest)
	}

	stream := &gatewayStream{method: method}
	resp, err := c.serve(ctx, m, stream, req)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = stream.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = stream.trailer
		}
	}
	if err != nil {
		return err
	}
	if resp == nil || !resp.ProtoReflect().IsValid() {
		return nil // a nil response goes over gRPC as an empty message
	}
	if n := proto.Size(resp); n > c.maxResponse {
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, c.maxResponse)
	}
	proto.Merge(out, resp)
	return nil
}

// serve is the server's side of a call: the handler, in a context of its own, behind the chain.
func (c *gatewayConn) serve(ctx context.Context, m unaryMethod, stream *gatewayStream, req proto.Message) (_ proto.Message, err error) {
	sctx, cancel := detachedContext(ctx)
	defer cancel()
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	sctx = metadata.NewIncomingContext(sctx, md)
	sctx = peer.NewContext(sctx, gatewayPeer)
	sctx = grpc.NewContextWithServerTransportStream(sctx, stream)
	if c.serverStats != nil {
		sctx = c.serverStats.TagRPC(sctx, &stats.RPCTagInfo{FullMethodName: stream.method})
		c.serverStats.HandleRPC(sctx, &stats.Begin{BeginTime: time.Now()})
		c.serverStats.HandleRPC(sctx, &stats.InHeader{FullMethod: stream.method, RemoteAddr: gatewayPeer.Addr, LocalAddr: gatewayPeer.Addr, Header: md})
		defer func() { c.serverStats.HandleRPC(sctx, &stats.End{EndTime: time.Now(), Error: err}) }()
	}
	decode := func(in any) error {
		m, ok := in.(proto.Message)
		if !ok || m.ProtoReflect().Descriptor() != req.ProtoReflect().Descriptor() {
			return status.Errorf(codes.Internal, "gateway: %s takes %T, was given %T", stream.method, in, req)
		}
		proto.Merge(m, req)
		return nil
	}
	resp, err := m.handler(m.impl, sctx, decode, c.chain)
	if err != nil {
		// As grpc does: an error that is not a status is Unknown, or the context's code.
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
		return nil, err
	}
	msg, ok := resp.(proto.Message)
	if !ok && resp != nil {
		return nil, status.Errorf(codes.Internal, "gateway: %s answered %T, not a protobuf message", stream.method, resp)
	}
	return msg, nil
}

// detachedContext returns a context with parent's deadline and cancellation but none of its
// values: what grpc gives a handler of a call made with parent.
func detachedContext(parent context.Context) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if d, ok := parent.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	stop := context.AfterFunc(parent, cancel)
	return ctx, func() { stop(); cancel() }
}

// inprocAddr is the address of both ends of the gateway's calls.
type inprocAddr struct{}

func (inprocAddr) Network() string { return inprocNetwork }
func (inprocAddr) String() string  { return inprocNetwork }

// gatewayPeer is the peer of every call the gateway makes, streams' included (bufconn's
// address has the same network).
var gatewayPeer = &peer.Peer{Addr: inprocAddr{}, LocalAddr: inprocAddr{}}

// gatewayStream is the grpc.ServerTransportStream of a gateway call: it keeps the header and
// trailer a handler sets for the gateway's Header and Trailer call options.
type gatewayStream struct {
	method string

	mu              sync.Mutex
	header, trailer metadata.MD
	headerSent      bool
}

func (s *gatewayStream) Method() string { return s.method }

func (s *gatewayStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headerSent {
		return status.Error(codes.Internal, "transport: the stream is done or WriteHeader was already called")
	}
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *gatewayStream) SendHeader(md metadata.MD) error {
	if err := s.SetHeader(md); err != nil {
		return err
	}
	s.mu.Lock()
	s.headerSent = true
	s.mu.Unlock()
	return nil
}

func (s *gatewayStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// chainUnary runs interceptors outermost first around a handler, as grpc's
// ChainUnaryInterceptor does; the gRPC server and the gateway share the one chain it returns.
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return interceptors[0](ctx, req, info, nextUnary(interceptors, 0, info, handler))
	}
}

func nextUnary(interceptors []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(interceptors)-1 {
		return handler
	}
	return func(ctx context.Context, req any) (any, error) {
		return interceptors[i+1](ctx, req, info, nextUnary(interceptors, i+1, info, handler))
	}
}

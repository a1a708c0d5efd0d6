package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// Requests that never reach a handler because their bytes do not decode (a string field holding
// invalid UTF-8, a truncated or corrupt message) are the caller's fault, so they get
// InvalidArgument. grpc-go cannot be told so by the codec: it wraps any unmarshal error in an
// Internal status and sends that to the client at once, before the handler or an interceptor can
// change it (and for unary calls it decodes before the interceptors run). So the message is
// handed to grpc wrapped in a decodeTarget; the codec decodes into the message inside and, on
// failure, notes the error there and reports success to grpc; the code that made the target
// (decodingHandler for unary calls, decodingStream for streams) always checks the note and
// answers InvalidArgument. A message that reaches the codec without a target fails as before
// (Internal), so nothing is ever handled half-decoded. Two consequences: a stats handler added
// later sees a *decodeTarget as the received payload, not the request; and an undecodable unary
// request is answered before the interceptors, so the call is not logged.

// decodeErrorPrefix starts the message of every InvalidArgument given for undecodable bytes.
const decodeErrorPrefix = "request could not be decoded: "

// decodeTarget carries a message to the codec and the codec's unmarshal error back.
type decodeTarget struct {
	msg any
	err error
}

// serverCodec is grpc's proto codec, with unmarshal errors noted on a decodeTarget. Marshal
// errors (a response the server built badly) stay Internal: they are the server's fault.
type serverCodec struct {
	base encoding.CodecV2
}

func newServerCodec() serverCodec {
	return serverCodec{base: encoding.GetCodecV2(encproto.Name)}
}

func (c serverCodec) Name() string { return c.base.Name() }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedMessage); ok {
		// Shared by several streams: a SliceBuffer is never recycled, so every send may read it.
		return mem.BufferSlice{mem.SliceBuffer(e.b)}, nil
	}
	return c.base.Marshal(v)
}

// encodedMessage is a message encoded once for several streams (a job's update for all of its
// watchers, jobs.go); the codec sends its bytes as they are. They must not change.
type encodedMessage struct{ b []byte }

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	t, ok := v.(*decodeTarget)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	// nil for grpc, which would send Internal at once; decodeInto reads t.err.
	t.err = c.base.Unmarshal(data, t.msg)
	return nil
}

// decodeInto receives one message into m through recv, turning a decode failure into
// InvalidArgument; other errors (the stream ended, the message was too large) pass unchanged.
func decodeInto(recv func(any) error, m any) error {
	t := &decodeTarget{msg: m}
	if err := recv(t); err != nil {
		return err
	}
	if t.err != nil {
		return status.Error(codes.InvalidArgument, decodeErrorPrefix+t.err.Error())
	}
	return nil
}

// decodingRegistrar registers services with every unary handler decoding through decodeInto.
// Streams are covered by decodeStream instead, which must wrap the stream before validation does.
// It also notes each unary method's own handler in unary, for the gateway (gateway.go), which
// hands it a message, not bytes.
type decodingRegistrar struct {
	srv   *grpc.Server
	unary map[string]unaryMethod
}

func (r decodingRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		r.unary["/"+desc.ServiceName+"/"+m.MethodName] = unaryMethod{impl: impl, handler: m.Handler}
		m.Handler = decodingHandler(m.Handler)
		d.Methods[i] = m
	}
	r.srv.RegisterService(&d, impl)
}

func decodingHandler(h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		return h(srv, ctx, func(m any) error { return decodeInto(dec, m) }, ic)
	}
}

// decodeStream is the outermost stream interceptor, so its wrapper sits right on grpc's stream
// and every other wrapper (validation) sees the decoded message, not the decodeTarget.
func decodeStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, &decodingStream{ServerStream: ss})
}

type decodingStream struct{ grpc.ServerStream }

func (s *decodingStream) RecvMsg(m any) error { return decodeInto(s.ServerStream.RecvMsg, m) }

// Compile-time check that serverCodec is a CodecV2.
var _ encoding.CodecV2 = serverCodec{}

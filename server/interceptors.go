package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// chain is the interceptor order, outermost first. Recovery is outermost so a panic anywhere,
// including in another interceptor, becomes an Internal error; observing (logging and metrics)
// sees the final code (and logs the method, code and duration only: never metadata, so never a
// key; a panicking call is counted as Internal there and logged by recovery); error mapping turns
// domain errors into codes before logging reads them; the deadline (unary calls only) starts
// inside those so a call that runs out is mapped and logged as DeadlineExceeded; auth runs
// before rate limiting so each key has its own bucket and callers with a bad key spend no one's
// tokens, and before validation so an unauthenticated caller learns nothing about the request's
// shape. Message size is not here: gRPC refuses oversized messages before any interceptor runs
// (MaxRecvMsgSize, server.go), and limitBody caps REST bodies before the gateway. Nor is
// decoding: a request that cannot be decoded (invalid UTF-8, truncated) is answered
// InvalidArgument by codec.go before this chain, for unary calls by the registrar and for
// streams by a stream interceptor that runs ahead of it.
func (s *Server) unaryChain() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		s.recoverUnary,
		s.observeUnary,
		s.mapErrorsUnary,
		s.deadlineUnary,
		s.authUnary,
		s.rateLimitUnary,
		validateUnary(s.validator),
	}
}

func (s *Server) streamChain() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		s.recoverStream,
		s.observeStream,
		s.mapErrorsStream,
		// no deadline: streams last as long as their job
		s.authStream,
		s.rateLimitStream,
		validateStream(s.validator),
	}
}

// --- recovery

func (s *Server) recovered(ctx context.Context, method string, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, internalMessage)
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, s.recovered(ctx, info.FullMethod, p)
		}
	}()
	return next(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.recovered(ss.Context(), info.FullMethod, p)
		}
	}()
	return next(srv, ss)
}

// --- logging and metrics

// observed records a finished call: its metrics, and its log line unless it panicked (recovery
// logs that, with the stack). The trace span is otelgrpc's (observe.go).
func (s *Server) observed(ctx context.Context, method string, start time.Time, err error, panicked bool) {
	code := status.Code(err)
	if panicked {
		code = codes.Internal // what recovery, outside, will answer
	}
	s.deps.Metrics.ObserveRPC(method, code.String(), transportOf(ctx), time.Since(start))
	if !panicked {
		s.logCall(ctx, method, start, err)
	}
}

func (s *Server) logCall(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.Canceled:
	case codes.Unauthenticated, codes.PermissionDenied:
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	if quietMethod(method) && code == codes.OK {
		level = slog.LevelDebug
	}
	s.log.Log(ctx, level, "rpc", "method", method, "code", code.String(), "duration", time.Since(start))
}

// quietMethod is true for calls made by probes, which would drown the log at info level.
func quietMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.") || strings.HasPrefix(method, "/grpc.reflection.")
}

func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx = requestLogAttrs(ctx, req)
	panicked := true
	defer func() { s.observed(ctx, info.FullMethod, start, err, panicked) }()
	resp, err = next(ctx, req)
	panicked = false
	return resp, err
}

func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
	start := time.Now()
	panicked := true
	defer func() { s.observed(ss.Context(), info.FullMethod, start, err, panicked) }()
	err = next(srv, ss)
	panicked = false
	return err
}

// --- error mapping

func (s *Server) mapErrorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	resp, err := next(ctx, req)
	if err != nil {
		return nil, toStatus(ctx, s.log, info.FullMethod, err)
	}
	return resp, nil
}

func (s *Server) mapErrorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return toStatus(ss.Context(), s.log, info.FullMethod, next(srv, ss))
}

// --- auth: auth.go; deadline and rate limiting: limits.go

// --- validation

// validationError turns protovalidate's violations into InvalidArgument with a message naming
// every bad field and a BadRequest detail per field.
func validationError(err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return status.Error(codes.InvalidArgument, "invalid request: "+err.Error())
	}
	parts := make([]string, 0, len(verr.Violations))
	br := &errdetails.BadRequest{}
	for _, v := range verr.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		msg := v.Proto.GetMessage()
		parts = append(parts, field+": "+msg)
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: msg})
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	if d, derr := st.WithDetails(br); derr == nil {
		st = d
	}
	return st.Err()
}

func validateUnary(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := v.Validate(m); err != nil {
				return nil, validationError(err)
			}
		}
		return next(ctx, req)
	}
}

// validatingStream checks every message the client sends on a stream.
type validatingStream struct {
	grpc.ServerStream
	v protovalidate.Validator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if err := s.v.Validate(pm); err != nil {
			return validationError(err)
		}
	}
	return nil
}

func validateStream(v protovalidate.Validator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		return next(srv, &validatingStream{ServerStream: ss, v: v})
	}
}

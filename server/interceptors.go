package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// chain is the interceptor order, outermost first. Recovery is outermost so a panic anywhere,
// including in another interceptor, becomes an Internal error; logging sees the final code;
// error mapping turns domain errors into codes before logging reads them; auth runs before
// validation so an unauthenticated caller learns nothing about the request's shape.
func (s *Server) unaryChain() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		s.recoverUnary,
		s.logUnary,
		s.mapErrorsUnary,
		s.authUnary,
		validateUnary(s.validator),
	}
}

func (s *Server) streamChain() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		s.recoverStream,
		s.logStream,
		s.mapErrorsStream,
		s.authStream,
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

// --- logging

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

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := next(ctx, req)
	s.logCall(ctx, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	start := time.Now()
	err := next(srv, ss)
	s.logCall(ss.Context(), info.FullMethod, start, err)
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

// --- auth

// openMethod is true for calls that never need a key: health probes and reflection (grpcurl).
func openMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
}

// keyring holds the SHA-256 of each accepted key, so comparisons take the same time whatever
// the key's length and whichever key matches.
type keyring [][sha256.Size]byte

func newKeyring(keys []string) keyring {
	kr := make(keyring, 0, len(keys))
	for _, k := range keys {
		kr = append(kr, sha256.Sum256([]byte(k)))
	}
	return kr
}

func (kr keyring) accepts(key string) bool {
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range kr {
		ok |= subtle.ConstantTimeCompare(sum[:], kr[i][:])
	}
	return ok == 1
}

var errNoCredentials = status.Error(codes.Unauthenticated, "missing API key: send the header authorization: Bearer <key>")
var errBadCredentials = status.Error(codes.Unauthenticated, "invalid API key")

func (s *Server) authenticate(ctx context.Context, method string) error {
	if len(s.keys) == 0 || openMethod(method) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return errNoCredentials
	}
	scheme, key, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || key == "" {
		return errNoCredentials
	}
	if !s.keys.accepts(strings.TrimSpace(key)) {
		return errBadCredentials
	}
	return nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return next(srv, ss)
}

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

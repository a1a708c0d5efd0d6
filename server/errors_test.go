package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/logtest"
)

func newLog() (*slog.Logger, *logtest.Buffer) {
	buf := &logtest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestToStatusMasksInternalErrors(t *testing.T) {
	t.Parallel()
	log, logged := newLog()
	err := toStatus(t.Context(), log, "/pipeline.v1.JobService/GetJob", fmt.Errorf("query jobs: %w", errors.New("secret detail")))
	st, ok := status.FromError(err)
	require.True(t, ok)
	require.Equal(t, codes.Internal, st.Code())
	require.NotContains(t, st.Message(), "secret detail")
	require.Equal(t, internalMessage, st.Message())
	require.Contains(t, logged.String(), "secret detail", "the detail goes to the log")
}

func TestToStatusHidesADependencysStatus(t *testing.T) {
	t.Parallel()
	log, logged := newLog()
	// Milvus refusing our credentials, wrapped by the vector store: not the caller's 401.
	dep := status.Error(codes.Unauthenticated, "milvus: bad token for user root")
	err := toStatus(t.Context(), log, "/pipeline.v1.SearchService/Search", fmt.Errorf("vector search: %w", dep))
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, internalMessage, status.Convert(err).Message())
	require.Contains(t, logged.String(), "bad token", "the detail goes to the log")

	// A dependency that is down or slow is Unavailable to the caller, without its text.
	err = toStatus(t.Context(), log, "/m", fmt.Errorf("vector search: %w", status.Error(codes.DeadlineExceeded, "milvus at 10.0.0.7 timed out")))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.NotContains(t, status.Convert(err).Message(), "10.0.0.7")

	// A status the handler returns as it is still passes through unchanged.
	own := status.Error(codes.PermissionDenied, "this key may not write")
	require.Equal(t, own, toStatus(t.Context(), log, "/m", own))
}

func TestToStatusConnectError(t *testing.T) {
	t.Parallel()
	// A real refused connection: nothing listens on port 1.
	c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, connErr := pgconn.Connect(c, "postgres://nobody:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	var ce *pgconn.ConnectError
	require.ErrorAs(t, connErr, &ce)

	err := toStatus(t.Context(), slog.New(slog.DiscardHandler), "/m", fmt.Errorf("get job: %w", connErr))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.NotContains(t, status.Convert(err).Message(), "127.0.0.1", "no address reaches the client")
	require.NotContains(t, status.Convert(err).Message(), "nobody")
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		// secret must not appear in the message (only checked when set).
		secret string
	}{
		{"nil", nil, codes.OK, ""},
		{"not found", fmt.Errorf("wrapped: %w", errs.NotFound("job", "j1")), codes.NotFound, ""},
		{"failed precondition", errs.FailedPrecondition("job is completed"), codes.FailedPrecondition, ""},
		{"already exists", fmt.Errorf("%w: retried before", errs.ErrAlreadyExists), codes.AlreadyExists, ""},
		{"unimplemented", errs.Unimplemented("later"), codes.Unimplemented, ""},
		{"unavailable", fmt.Errorf("%w: redis at 10.0.0.7", errs.ErrUnavailable), codes.Unavailable, "10.0.0.7"},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), codes.Canceled, ""},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{"admin shutdown", &pgconn.PgError{Code: "57P01", Message: "terminating connection on db7"}, codes.Unavailable, "db7"},
		{"connection exception", &pgconn.PgError{Code: "08006", Message: "connection failure"}, codes.Unavailable, ""},
		{"unique violation is a bug", &pgconn.PgError{Code: "23505", Message: `duplicate key value violates "jobs_pkey"`}, codes.Internal, "jobs_pkey"},
		{"status passes through", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := toStatus(t.Context(), log, "/m", tc.err)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if tc.secret != "" {
				require.NotContains(t, status.Convert(err).Message(), tc.secret)
			}
		})
	}
}

func TestToStatusInvalidArgumentDetails(t *testing.T) {
	t.Parallel()
	err := toStatus(t.Context(), slog.New(slog.DiscardHandler), "/m", errs.InvalidArgument("page_token", "malformed"))
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Contains(t, st.Message(), "page_token")
	require.Len(t, st.Details(), 1)
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok, "%T", st.Details()[0])
	require.Equal(t, "page_token", br.GetFieldViolations()[0].GetField())
	require.Equal(t, "malformed", br.GetFieldViolations()[0].GetDescription())
}

func newTestServer(t *testing.T, log *slog.Logger) *Server {
	t.Helper()
	s, err := New(config.Default(), Deps{Log: log})
	require.NoError(t, err)
	return s
}

func TestRecoverUnary(t *testing.T) {
	t.Parallel()
	log, logged := newLog()
	s := newTestServer(t, log)
	info := &grpc.UnaryServerInfo{FullMethod: "/pipeline.v1.JobService/GetJob"}
	resp, err := s.recoverUnary(t.Context(), "req", info, func(context.Context, any) (any, error) {
		panic("secret detail")
	})
	require.Nil(t, resp)
	st := status.Convert(err)
	require.Equal(t, codes.Internal, st.Code())
	require.NotContains(t, st.Message(), "secret detail")
	require.Contains(t, logged.String(), "secret detail")
	require.Contains(t, logged.String(), info.FullMethod)

	// Without a panic the handler's answer passes untouched.
	resp, err = s.recoverUnary(t.Context(), "req", info, func(context.Context, any) (any, error) { return "ok", nil })
	require.NoError(t, err)
	require.Equal(t, "ok", resp)
}

// fakeStream is the part of a server stream the interceptors use.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }

func TestRecoverStream(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, slog.New(slog.DiscardHandler))
	err := s.recoverStream(nil, fakeStream{ctx: t.Context()}, &grpc.StreamServerInfo{FullMethod: "/m"}, func(any, grpc.ServerStream) error {
		panic(errors.New("secret detail"))
	})
	require.Equal(t, codes.Internal, status.Code(err))
	require.NotContains(t, status.Convert(err).Message(), "secret detail")
}

// TestUnaryChainMasksPanics runs the whole interceptor chain around a panicking handler: the
// panic must not escape, whatever interceptor order is configured.
func TestUnaryChainMasksPanics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, slog.New(slog.DiscardHandler))
	chain := s.unaryChain()
	handler := grpc.UnaryHandler(func(context.Context, any) (any, error) { panic("boom") })
	info := &grpc.UnaryServerInfo{FullMethod: "/pipeline.v1.SearchService/Search"}
	for i := len(chain) - 1; i >= 0; i-- {
		ic, next := chain[i], handler
		handler = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
	}
	_, err := handler(t.Context(), "not a proto message")
	require.Equal(t, codes.Internal, status.Code(err))
}

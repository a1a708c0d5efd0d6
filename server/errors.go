package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// internalMessage is what callers see for any error the service did not expect. The detail goes
// to the log only, so no internal text (SQL, addresses, secrets) reaches a client.
const internalMessage = "internal error; the server log has the details"

// toStatus is the one place where domain errors become gRPC statuses. Only a status returned as
// it is passes through; one wrapped by our code is a dependency's and is mapped like any error. grpc-gateway then maps the
// codes to HTTP (InvalidArgument 400, NotFound 404, FailedPrecondition 400, Unauthenticated 401, ...).
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err // already a status (validation, auth, or a handler that chose a code)
	}
	var ia *errs.InvalidArgumentError
	switch {
	case errors.As(err, &ia):
		st := status.New(codes.InvalidArgument, err.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: ia.Field, Description: ia.Reason},
		}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, errs.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, errs.ErrFailedPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, errs.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, errs.ErrResourceExhausted):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, errs.ErrUnimplemented):
		return status.Error(codes.Unimplemented, err.Error())
	case errors.Is(err, errs.ErrUnavailable):
		log.WarnContext(ctx, "dependency unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "a dependency is unavailable; retry later")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case isConnectionError(err):
		log.WarnContext(ctx, "database unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "the database is unavailable; retry later")
	}
	// A status wrapped by our code came from a dependency (Milvus, the embedder): its code and
	// text describe our call to it, not the caller's request, so neither is passed on. A
	// dependency's "unauthenticated" would otherwise tell a REST caller 401 in Milvus's words.
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			log.WarnContext(ctx, "dependency unavailable", "method", method, "err", err)
			return status.Error(codes.Unavailable, "a dependency is unavailable; retry later")
		}
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, internalMessage)
}

// isConnectionError tells a lost or refused database connection from a bug.
func isConnectionError(err error) bool {
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03")
	}
	return pgconn.SafeToRetry(err)
}

package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// translate turns a pgx error into a domain error, once, here. kind and id name the thing a
// missing row or a broken foreign key refers to.
func translate(err error, kind, id string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.NotFound(kind, id)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %s", errs.ErrAlreadyExists, pgErr.Detail)
		case pgErr.Code == "23503": // foreign_key_violation: the parent was deleted meanwhile
			return errs.NotFound(kind, id)
		case unavailableCode(pgErr.Code):
			return fmt.Errorf("%w: postgres: %w", errs.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || connectionLost(err) {
		return fmt.Errorf("%w: postgres: %w", errs.ErrUnavailable, err)
	}
	return err
}

// connectionLost reports a connection that broke mid-query (Postgres restarted or crashed: the
// socket closed or was reset before the answer came). The statement may or may not have run, so
// this is for callers whose statements are safe to repeat.
func connectionLost(err error) bool {
	var netErr *net.OpError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr)
}

// unavailableCode reports SQLSTATEs that mean Postgres cannot serve now but may soon: connection
// exceptions (class 08), too_many_connections, and the shutdown and start-up codes.
func unavailableCode(code string) bool {
	switch code {
	case "53300", "57P01", "57P02", "57P03":
		return true
	}
	return strings.HasPrefix(code, "08")
}

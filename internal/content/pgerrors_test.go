package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestTranslate(t *testing.T) {
	t.Parallel()
	require.NoError(t, translate(nil, "source", "x"))

	err := translate(fmt.Errorf("scan: %w", pgx.ErrNoRows), "document", "d1")
	var nf *errs.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.Equal(t, errs.NotFoundError{Kind: "document", ID: "d1"}, *nf)

	err = translate(&pgconn.PgError{Code: "23503"}, "source", "s1")
	require.ErrorAs(t, err, &nf)
	require.Equal(t, "source", nf.Kind)

	require.ErrorIs(t, translate(&pgconn.PgError{Code: "23505"}, "source", ""), errs.ErrAlreadyExists)
	require.ErrorIs(t, translate(&pgconn.PgError{Code: "08006"}, "source", ""), errs.ErrUnavailable)
	require.ErrorIs(t, translate(&pgconn.PgError{Code: "57P01"}, "source", ""), errs.ErrUnavailable)
	// A connection that broke mid-query (Postgres restarted): retry later, not a permanent failure.
	require.ErrorIs(t, translate(io.ErrUnexpectedEOF, "document", ""), errs.ErrUnavailable)
	require.ErrorIs(t, translate(fmt.Errorf("read: %w", syscall.ECONNRESET), "document", ""), errs.ErrUnavailable)

	other := translate(&pgconn.PgError{Code: "22P02"}, "source", "")
	require.False(t, errors.Is(other, errs.ErrInvalidArgument) || errors.Is(other, errs.ErrUnavailable))
	var pgErr *pgconn.PgError
	require.ErrorAs(t, other, &pgErr, "an unexpected error keeps its detail for the log")

	require.Equal(t, context.Canceled, translate(context.Canceled, "source", ""))
}

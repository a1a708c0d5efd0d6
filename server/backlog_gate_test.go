package server

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// The gate counts once while uploads stay well under the limit, counts again near it, and
// refuses only on a fresh count.
func TestBacklogGate(t *testing.T) {
	t.Parallel()
	backlog, counts := 0, 0
	count := func(context.Context) (int, error) { counts++; return backlog, nil }
	var g backlogGate
	for range 5 {
		require.NoError(t, g.admit(t.Context(), count, 10, 1))
	}
	require.Equal(t, 1, counts, "one count stands for the uploads under the limit")

	backlog = 9 // others filled the backlog meanwhile
	for range 4 {
		require.NoError(t, g.admit(t.Context(), count, 10, 1)) // the estimate reaches 9
	}
	require.Equal(t, 1, counts)
	err := g.admit(t.Context(), count, 10, 1) // near the limit: counted again, 9 < 10
	require.NoError(t, err)
	require.Equal(t, 2, counts)
	backlog = 10
	err = g.admit(t.Context(), count, 10, 1)
	require.ErrorIs(t, err, errs.ErrResourceExhausted)
	require.Equal(t, 3, counts)

	boom := errors.New("boom")
	err = g.admit(t.Context(), func(context.Context) (int, error) { return 0, boom }, 10, 1)
	require.ErrorIs(t, err, boom)
}

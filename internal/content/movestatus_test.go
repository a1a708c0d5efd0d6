package content_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

// TestMoveSourceStatus: a move writes; a move to the status and error the source has writes
// nothing (the row keeps its version); a move the state machine forbids, or of an unknown
// source, is refused.
func TestMoveSourceStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	move := func(st content.SourceStatus, msg string) (bool, error) {
		return b.store.MoveSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: src.ID, Status: st, Error: msg})
	}
	version := func() string { // the row version: it changes with every write
		var x string
		require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT xmin::text FROM sources WHERE id = $1`, src.ID).Scan(&x))
		return x
	}

	changed, err := move(content.SourceStatusProcessing, "")
	require.NoError(t, err)
	require.True(t, changed)
	before := version()
	changed, err = move(content.SourceStatusProcessing, "")
	require.NoError(t, err)
	require.False(t, changed, "already processing with no note")
	require.Equal(t, before, version(), "nothing written")

	changed, err = move(content.SourceStatusReady, "1 of 2 documents failed")
	require.NoError(t, err)
	require.True(t, changed)
	got := b.get(t, src.ID)
	require.Equal(t, content.SourceStatusReady, got.Status)
	require.Equal(t, "1 of 2 documents failed", got.Error)

	_, err = move(content.SourceStatusReady, "")
	require.ErrorIs(t, err, errs.ErrFailedPrecondition, "READY to READY is not a move")

	_, err = b.store.MoveSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: uuid.NewString(), Status: content.SourceStatusReady})
	require.ErrorIs(t, err, errs.ErrNotFound)
}

package jobs_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// TestSourcesWithActiveProcessing: a pending or running processing job of the source counts; a
// finished one, a crawl job, or another source's job does not.
func TestSourcesWithActiveProcessing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	active := func() bool {
		t.Helper()
		got, err := b.mgr.SourcesWithActiveProcessing(ctx, []uuid.UUID{b.source, uuid.New()})
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 1, "only the source asked about can be active: %v", got)
		return got[b.source]
	}
	require.False(t, active(), "no job yet")

	other := insertSource(t, b.pool)
	_, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: other, DocumentIDs: newDocIDs(1)})
	require.NoError(t, err)
	crawl, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeCrawl, SourceID: b.source})
	require.NoError(t, err)
	require.False(t, active(), "another source's processing job and this source's crawl do not count")

	job, err := b.mgr.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: newDocIDs(2)})
	require.NoError(t, err)
	require.True(t, active(), "pending")
	_, err = b.mgr.Start(ctx, job.ID)
	require.NoError(t, err)
	require.True(t, active(), "in progress")
	_, err = b.mgr.Cancel(ctx, job.ID)
	require.NoError(t, err)
	require.False(t, active(), "finished")
	_, err = b.mgr.Cancel(ctx, crawl.ID)
	require.NoError(t, err)
}

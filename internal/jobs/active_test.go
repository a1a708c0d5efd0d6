package jobs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// TestSourceHasActiveProcessing: a pending or running processing job of the source counts; a
// finished one, a crawl job, or another source's job does not.
func TestSourceHasActiveProcessing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	active := func() bool {
		t.Helper()
		got, err := b.mgr.SourceHasActiveProcessing(ctx, b.source)
		require.NoError(t, err)
		return got
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

package jobs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

func TestOneActiveCrawlPerSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	first, err := b.mgr.CreateCrawl(ctx, b.source, 0)
	require.NoError(t, err)
	again, err := b.mgr.CreateCrawl(ctx, b.source, 0)
	require.ErrorIs(t, err, jobs.ErrCrawlRunning)
	require.ErrorIs(t, err, errs.ErrAlreadyExists)
	require.Equal(t, first.ID, again.ID, "the running crawl is returned, no second crawl")

	_, err = b.mgr.Cancel(ctx, first.ID)
	require.NoError(t, err)
	next, err := b.mgr.CreateCrawl(ctx, b.source, 0)
	require.NoError(t, err, "a finished crawl does not block the next")
	require.NotEqual(t, first.ID, next.ID)
}

func TestCrawlProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	job, err := b.mgr.CreateCrawl(ctx, b.source, 0)
	require.NoError(t, err)
	_, err = b.mgr.UpdateCrawlProgress(ctx, job.ID, jobs.CrawlProgress{Discovered: 3}, "")
	require.ErrorIs(t, err, errs.ErrFailedPrecondition, "only a running crawl records progress")

	_, err = b.mgr.Start(ctx, job.ID)
	require.NoError(t, err)
	got, err := b.mgr.UpdateCrawlProgress(ctx, job.ID, jobs.CrawlProgress{Discovered: 10, Fetched: 4, Failed: 1}, "fc-123")
	require.NoError(t, err)
	require.Equal(t, jobs.CrawlProgress{Discovered: 10, Fetched: 4, Failed: 1}, got.Crawl)
	require.Equal(t, "fc-123", got.ExternalID)
	got, err = b.mgr.UpdateCrawlProgress(ctx, job.ID, jobs.CrawlProgress{Discovered: 12, Fetched: 6}, "")
	require.NoError(t, err)
	require.Equal(t, "fc-123", got.ExternalID, "an empty id keeps the stored one")

	stale, err := b.mgr.StaleCrawls(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, stale, 1)
	stale, err = b.mgr.StaleCrawls(ctx, time.Now().Add(-time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, stale)
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// getSource reads a source through the API.
func (b *bundle) getSource(t *testing.T, id string) *pipelinev1.Source {
	t.Helper()
	resp, err := b.content.GetSource(tctx(t), &pipelinev1.GetSourceRequest{SourceId: id})
	require.NoError(t, err)
	return resp.GetSource()
}

// requireChunkCount checks that the source's chunk_count is what the vector store holds for it,
// in GetSource and in ListSources alike, and returns it.
func (b *bundle) requireChunkCount(t *testing.T, id string) int64 {
	t.Helper()
	stored := b.vectorCount(t, vector.Filter{SourceIDs: []string{id}})
	src := b.getSource(t, id)
	require.EqualValues(t, stored, src.GetChunkCount(), "chunk_count is the chunks stored for the source")
	list, err := b.content.ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
	require.NoError(t, err)
	var found bool
	for _, s := range list.GetSources() {
		if s.GetSourceId() == id {
			found = true
			require.Equal(t, src.GetChunkCount(), s.GetChunkCount(), "ListSources agrees with GetSource")
			require.Equal(t, src.GetDocumentCount(), s.GetDocumentCount())
			require.Equal(t, src.GetLastCrawlJobId(), s.GetLastCrawlJobId())
		}
	}
	require.True(t, found)
	return src.GetChunkCount()
}

// TestRetryThatSucceedsClearsTheSourceNote: a processing job left a document failed, so its
// source is READY with a note; a retry that processes that document clears the note.
func TestRetryThatSucceedsClearsTheSourceNote(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.MaxRetries = 1 }})
	src := b.newSource(t)
	b.embedder.mu.Lock()
	b.embedder.transient["marker002"] = 2 // outlasts max_retries=1 in the first job only
	b.embedder.mu.Unlock()
	resp := b.ingest(t, src, doc(0, ""), doc(1, ""), doc(2, ""))
	seen := b.watchUntilDone(t, resp.GetJob().GetJobId())
	first := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, first.GetStatus())
	require.EqualValues(t, 1, first.GetProcessing().GetErrorCount())
	noted := b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)
	require.Contains(t, noted.GetError(), "1 of 3 documents failed")
	before := b.requireChunkCount(t, src)
	require.Positive(t, before)

	retry, err := b.jobs.RetryJob(tctx(t), &pipelinev1.RetryJobRequest{JobId: first.GetJobId()})
	require.NoError(t, err)
	seen = b.watchUntilDone(t, retry.GetJob().GetJobId())
	last := seen[len(seen)-1]
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, last.GetStatus())
	require.Zero(t, last.GetProcessing().GetErrorCount())

	var got *pipelinev1.Source
	require.Eventually(t, func() bool {
		// The source is settled by a hook after the job's last change is committed, so the
		// watcher can see the job end before the source is READY again.
		got = b.getSource(t, src)
		return got.GetStatus() == pipelinev1.SourceStatus_SOURCE_STATUS_READY && got.GetError() == ""
	}, waitTimeout, 10*time.Millisecond, "the source is READY again and the note of the failed documents is cleared")
	require.Greater(t, b.requireChunkCount(t, src), before, "the retried document's chunks count now")
	require.Empty(t, got.GetLastCrawlJobId(), "an upload source is never crawled")
	require.Nil(t, got.GetLastCrawlTime())
}

// longPage is a page long enough to become several chunks at the test's 64-token chunks.
func longPage(marker, paragraphs int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "<h1>Page about marker%03d</h1>", marker)
	for i := range paragraphs {
		fmt.Fprintf(&sb, "<h2>Part %d</h2><p>Paragraph %d of the page about marker%03d, with enough words "+
			"to fill a chunk of its own: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda "+
			"mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega.</p>", i, i, marker)
	}
	return sb.String()
}

// TestSourceCountsAndLastCrawl: chunk_count follows what is stored through a crawl, a refresh
// that shrinks one page and removes another, and last_crawl_* name the newest finished crawl.
func TestSourceCountsAndLastCrawl(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1})
	s := newSite(t)
	s.set("/", "<h1>Home</h1><p>Start here.</p>")
	s.set("/big", longPage(1, 8))
	s.set("/gone", longPage(2, 3))
	s.set("/same", page(3, ""))

	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: s.srv.URL + "/"})
	require.NoError(t, err)
	src := resp.GetSource().GetSourceId()
	require.Zero(t, resp.GetSource().GetChunkCount())
	require.Empty(t, resp.GetSource().GetLastCrawlJobId(), "no crawl has finished yet")
	crawl := b.crawlToEnd(t, resp.GetJob().GetJobId())
	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)

	got := b.getSource(t, src)
	require.EqualValues(t, 4, got.GetDocumentCount())
	require.Equal(t, crawl.GetJobId(), got.GetLastCrawlJobId())
	require.Equal(t, crawl.GetFinishTime().AsTime(), got.GetLastCrawlTime().AsTime())
	afterCrawl := b.requireChunkCount(t, src)
	require.Greater(t, afterCrawl, int64(4), "the long pages make several chunks each")

	// The refresh replaces /big with a one-paragraph page and deletes /gone.
	s.set("/big", longPage(1, 1))
	s.set("/gone", "")
	refresh, err := b.content.RefreshSource(tctx(t), &pipelinev1.RefreshSourceRequest{SourceId: src})
	require.NoError(t, err)
	recrawl := b.crawlToEnd(t, refresh.GetJob().GetJobId())
	b.requireSourceStatus(t, src, pipelinev1.SourceStatus_SOURCE_STATUS_READY)

	got = b.getSource(t, src)
	require.EqualValues(t, 3, got.GetDocumentCount())
	require.Equal(t, recrawl.GetJobId(), got.GetLastCrawlJobId(), "the newest finished crawl")
	require.Equal(t, recrawl.GetFinishTime().AsTime(), got.GetLastCrawlTime().AsTime())
	afterRefresh := b.requireChunkCount(t, src)
	require.Less(t, afterRefresh, afterCrawl, "fewer chunks after the page shrank and another was deleted")
}

package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// TestNewerContentWinsOverASlowerOlderJob: a document's old content is held in the embedder
// while its new content is uploaded and indexed by a second job; when the first job's worker
// goes on, it must not leave the old content's chunks in the store (it would overwrite the new
// ones under the same chunk ids): it finds the content changed and indexes the new content.
func TestNewerContentWinsOverASlowerOlderJob(t *testing.T) {
	t.Parallel()
	b := start(t, options{workers: 1, cfg: func(c *config.Config) { c.ExpressMaxDocuments = 0 }})
	src := b.newSource(t)
	release := make(chan struct{})
	b.embedder.mu.Lock()
	b.embedder.block = release
	b.embedder.mu.Unlock()
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})

	old := &pipelinev1.DocumentInput{Uri: "docs/race.md", Content: "# Race\n\nThe old words of markerold wait here. BLOCK\n"}
	first := b.ingest(t, src, old)
	require.Eventually(t, func() bool { return b.embedder.callsOf("markerold") > 0 }, waitTimeout, 10*time.Millisecond,
		"the old content reached the embedder")

	newer := &pipelinev1.DocumentInput{Uri: "docs/race.md", Content: "# Race\n\nThe new words of markernew.\n"}
	second := b.ingest(t, src, newer)
	require.Equal(t, first.GetDocuments()[0].GetDocumentId(), second.GetDocuments()[0].GetDocumentId())
	seen := b.watchUntilDone(t, second.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())

	close(release)
	released = true
	seen = b.watchUntilDone(t, first.GetJob().GetJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, seen[len(seen)-1].GetStatus())

	got, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "the words of markerold", TopK: 10, SourceIds: []string{src}})
	require.NoError(t, err)
	require.NotEmpty(t, got.GetResults())
	for _, r := range got.GetResults() {
		require.NotContains(t, r.GetText(), "markerold", "the old content's chunks stayed in the store")
		require.Contains(t, r.GetText(), "markernew")
	}
}

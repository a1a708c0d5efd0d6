package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// TestBackpressure: with the backlog at its limit, uploads are refused with ResourceExhausted
// and nothing is stored; with the crawl limit reached, a new web source is refused before it
// is stored.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) {
		c.MaxBacklogBatches = 1
		c.MaxActiveCrawls = 1
	})
	src := b.createSource(t)
	first := b.ingest(t, src.GetSourceId(), 2) // one batch: the backlog is now full (no workers here)
	require.NotEmpty(t, first.GetJob().GetJobId())

	_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{
		SourceId:  src.GetSourceId(),
		Documents: []*pipelinev1.DocumentInput{{Uri: "more.md", Content: "more"}},
	})
	st := requireCode(t, err, codes.ResourceExhausted, "")
	require.Contains(t, st.Message(), "PIPELINE_MAX_BACKLOG_BATCHES")
	var docs int
	require.NoError(t, b.pool.QueryRow(tctx(t), `SELECT count(*) FROM documents WHERE uri = 'more.md'`).Scan(&docs))
	require.Zero(t, docs, "a refused upload stores nothing")

	// A crawl that cannot start (loopback refused here) still counts while it is active; make
	// one active crawl by hand, then a new web source is refused.
	_, err = b.pool.Exec(tctx(t), `INSERT INTO sources (id, name, url, status) VALUES (gen_random_uuid(), 'busy', 'http://busy.example/', 'crawling')`)
	require.NoError(t, err)
	_, err = b.pool.Exec(tctx(t), `INSERT INTO jobs (id, type, status, source_id) SELECT gen_random_uuid(), 'crawl', 'in_progress', id FROM sources WHERE name = 'busy'`)
	require.NoError(t, err)
	_, err = b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "http://other.example/"})
	st = requireCode(t, err, codes.ResourceExhausted, "")
	require.Contains(t, st.Message(), "PIPELINE_MAX_ACTIVE_CRAWLS")
	var n int
	require.NoError(t, b.pool.QueryRow(tctx(t), `SELECT count(*) FROM sources WHERE url = 'http://other.example/'`).Scan(&n))
	require.Zero(t, n, "the refused source is not stored")
}

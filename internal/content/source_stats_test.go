package content_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
)

func (b *testBundle) get(t *testing.T, id string) *content.Source {
	t.Helper()
	src, err := b.store.GetSource(b.ctx, &content.GetSourceParams{ID: id})
	require.NoError(t, err)
	return src
}

func (b *testBundle) indexed(t *testing.T, documentID string, chunks int64) {
	t.Helper()
	var hash string
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT content_hash FROM documents WHERE id = $1`, documentID).Scan(&hash))
	ok, err := b.store.PutIndexState(b.ctx, content.IndexState{DocumentID: documentID, ContentHash: hash, Fingerprint: "f", ChunkCount: chunks})
	require.NoError(t, err)
	require.True(t, ok)
}

// job inserts a job row of the source; finished is nil for a job still running.
func (b *testBundle) job(t *testing.T, sourceID, typ, status string, finished *time.Time) string {
	t.Helper()
	id := uuid.New()
	_, err := b.pool.Exec(b.ctx, `INSERT INTO jobs (id, type, status, source_id, finished_at) VALUES ($1, $2, $3, $4, $5)`,
		id, typ, status, sourceID, finished)
	require.NoError(t, err)
	return id.String()
}

func TestSourceChunkCount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	one, two := b.source(t), b.source(t)
	docs := b.upsert(t, one.ID, content.DocumentInput{URI: "a"}, content.DocumentInput{URI: "b"}, content.DocumentInput{URI: "c"})
	other := b.upsert(t, two.ID, content.DocumentInput{URI: "x"})
	require.Zero(t, b.get(t, one.ID).ChunkCount, "nothing indexed yet")

	b.indexed(t, docs[0].Document.ID, 5)
	b.indexed(t, docs[1].Document.ID, 3) // c is never indexed: it adds nothing
	b.indexed(t, other[0].Document.ID, 7)
	got := b.get(t, one.ID)
	require.EqualValues(t, 3, got.DocumentCount)
	require.EqualValues(t, 8, got.ChunkCount)

	list, _, err := b.store.ListSources(b.ctx, &content.ListSourcesParams{})
	require.NoError(t, err)
	require.Len(t, list, 2)
	counts := map[string]int64{}
	for _, s := range list {
		counts[s.ID] = s.ChunkCount
	}
	require.Equal(t, map[string]int64{one.ID: 8, two.ID: 7}, counts)

	// Re-indexed into fewer chunks: the new count replaces the old one.
	b.indexed(t, docs[0].Document.ID, 2)
	require.EqualValues(t, 5, b.get(t, one.ID).ChunkCount)

	// A deleted document takes its chunks with it.
	require.NoError(t, b.store.DeleteDocuments(b.ctx, one.ID, []string{docs[1].Document.ID}))
	got = b.get(t, one.ID)
	require.EqualValues(t, 2, got.DocumentCount)
	require.EqualValues(t, 2, got.ChunkCount)

	moved, err := b.store.UpdateSourceStatus(b.ctx, &content.UpdateSourceStatusParams{ID: one.ID, Status: content.SourceStatusProcessing})
	require.NoError(t, err)
	require.EqualValues(t, 2, moved.ChunkCount)
	deleted, err := b.store.DeleteSource(b.ctx, &content.DeleteSourceParams{ID: one.ID})
	require.NoError(t, err)
	require.EqualValues(t, 2, deleted.DocumentCount, "what was deleted")
	require.EqualValues(t, 2, deleted.ChunkCount)
	require.EqualValues(t, 7, b.get(t, two.ID).ChunkCount, "other sources are untouched")
}

func TestSourceLastCrawl(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	got := b.get(t, src.ID)
	require.Empty(t, got.LastCrawlJobID)
	require.True(t, got.LastCrawlAt.IsZero())

	hourAgo := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	first := b.job(t, src.ID, "crawl", "completed", &hourAgo)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.job(t, src.ID, "process", "completed", &now) // not a crawl
	b.job(t, src.ID, "crawl", "in_progress", nil)  // not finished
	b.job(t, b.source(t).ID, "crawl", "completed", &now)
	got = b.get(t, src.ID)
	require.Equal(t, first, got.LastCrawlJobID)
	require.Equal(t, hourAgo, got.LastCrawlAt)

	failed := b.job(t, src.ID, "crawl", "failed", &now) // a failed crawl is a crawl too
	got = b.get(t, src.ID)
	require.Equal(t, failed, got.LastCrawlJobID)
	require.Equal(t, now, got.LastCrawlAt)
	list, _, err := b.store.ListSources(b.ctx, &content.ListSourcesParams{})
	require.NoError(t, err)
	for _, s := range list {
		if s.ID == src.ID {
			require.Equal(t, failed, s.LastCrawlJobID)
			require.Equal(t, now, s.LastCrawlAt)
		}
	}
}

package content_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
)

// TestIndexStateOfAnOlderWorker: a worker of the version before migration 00006 (still running
// during a rolling upgrade) writes an index state without its source; the row is accepted and
// counts toward the source's chunks.
func TestIndexStateOfAnOlderWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	docs := b.upsert(t, src.ID, content.DocumentInput{URI: "a"})
	_, err := b.pool.Exec(b.ctx, `
		INSERT INTO document_index_state (document_id, content_hash, fingerprint, chunk_count, indexed_at)
		VALUES ($1, 'h', 'f', 7, now())`, docs[0].Document.ID)
	require.NoError(t, err)
	got, err := b.store.GetSource(b.ctx, &content.GetSourceParams{ID: src.ID})
	require.NoError(t, err)
	require.EqualValues(t, 7, got.ChunkCount)
}

package content_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestIndexStatesOfAGroupAndJobStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	docs := b.upsert(t, src.ID, content.DocumentInput{URI: "a"}, content.DocumentInput{URI: "b"})
	a, bb := docs[0].Document.ID, docs[1].Document.ID
	job := uuid.MustParse(b.job(t, src.ID, "process", "in_progress", nil))

	ha, hb := docs[0].Document.ContentHash, docs[1].Document.ContentHash

	gone := uuid.NewString()
	written, status, err := b.store.PutIndexStates(b.ctx, []content.IndexState{
		{DocumentID: a, ContentHash: ha, Fingerprint: "f", ChunkCount: 4},
		{DocumentID: gone, ContentHash: "h", Fingerprint: "f", ChunkCount: 1},
		{DocumentID: bb, ContentHash: hb, Fingerprint: "f", ChunkCount: 9},
		{DocumentID: bb, ContentHash: hb, Fingerprint: "f", ChunkCount: 2}, // the last one counts
	}, job)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{a: true, bb: true}, written, "a deleted document gets no state")
	require.Equal(t, "in_progress", status)
	_, err = b.pool.Exec(b.ctx, `DELETE FROM document_index_state WHERE document_id = $1`, bb)
	require.NoError(t, err)

	// New content for a arrives while a worker indexes the old: the old state is not written.
	newer := b.upsert(t, src.ID, content.DocumentInput{URI: "a", Content: "newer content"})[0].Document
	require.Equal(t, a, newer.ID)
	require.NotEqual(t, ha, newer.ContentHash)
	written, _, err = b.store.PutIndexStates(b.ctx, []content.IndexState{{DocumentID: a, ContentHash: ha, Fingerprint: "f", ChunkCount: 5}}, job)
	require.NoError(t, err)
	require.False(t, written[a], "a state built from content the document no longer has is refused")

	_, err = b.pool.Exec(b.ctx, `UPDATE jobs SET status = 'cancelled' WHERE id = $1`, job)
	require.NoError(t, err)
	written, status, err = b.store.PutIndexStates(b.ctx, []content.IndexState{{DocumentID: a, ContentHash: newer.ContentHash, Fingerprint: "f", ChunkCount: 3}}, job)
	require.NoError(t, err)
	require.True(t, written[a])
	require.Equal(t, "cancelled", status, "the status is read in the same statement")

	_, status, err = b.store.PutIndexStates(b.ctx, []content.IndexState{{DocumentID: a, ContentHash: newer.ContentHash, Fingerprint: "f", ChunkCount: 3}}, uuid.New())
	require.NoError(t, err)
	require.Empty(t, status, "a job that is gone has no status")

	// The documents with their states, in one statement; a document that is gone is left out.
	got, states, covered, err := b.store.GetDocumentsWithStates(b.ctx, []uuid.UUID{uuid.MustParse(a), uuid.MustParse(bb), uuid.MustParse(gone)}, 0)
	require.NoError(t, err)
	require.Equal(t, 3, covered)
	require.Len(t, got, 2)
	byID := map[string]*content.Document{got[0].ID: got[0], got[1].ID: got[1]}
	require.Equal(t, "newer content", byID[a].Content)
	require.Equal(t, newer.ContentHash, byID[a].ContentHash)
	require.Equal(t, docs[1].Document.URI, byID[bb].URI)
	require.Len(t, states, 1, "b was never indexed")
	require.Equal(t, newer.ContentHash, states[a].ContentHash)
	require.EqualValues(t, 3, states[a].ChunkCount)
	one, ok, err := b.store.GetIndexState(b.ctx, a)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, one, states[a])
}

// Written inside a transaction of the caller's, an index state does not switch that
// transaction to an asynchronous commit: only a write that is its own transaction does.
func TestIndexStateInCallersTransactionKeepsItsCommitMode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	d := b.upsert(t, src.ID, content.DocumentInput{URI: "a"})[0].Document

	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(b.ctx) }()
	var before string
	require.NoError(t, tx.QueryRow(b.ctx, "SHOW synchronous_commit").Scan(&before))
	written, _, err := content.NewPgStore(tx).PutIndexStates(b.ctx, []content.IndexState{
		{DocumentID: d.ID, ContentHash: d.ContentHash, Fingerprint: "f", ChunkCount: 1},
	}, uuid.Nil)
	require.NoError(t, err)
	require.True(t, written[d.ID])
	var after string
	require.NoError(t, tx.QueryRow(b.ctx, "SHOW synchronous_commit").Scan(&after))
	require.Equal(t, before, after)
	require.NoError(t, tx.Commit(b.ctx))

	_, states, _, err := b.store.GetDocumentsWithStates(b.ctx, []uuid.UUID{uuid.MustParse(d.ID)}, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, states[d.ID].ChunkCount)
}

// A group read stops after the document that brings its content to the byte budget: the first
// document always comes, a document that does not exist takes no bytes, an id listed twice
// counts once (at its first place), and covered tells the caller where to go on.
func TestGetDocumentsWithStatesStopsAtTheByteBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.source(t)
	sized := func(uri string, n int) content.DocumentInput {
		return content.DocumentInput{URI: uri, Content: uri + strings.Repeat("x", n-len(uri))}
	}
	up := b.upsert(t, src.ID, sized("a", 100), sized("b", 300), sized("c", 200), sized("d", 50))
	id := func(i int) uuid.UUID { return uuid.MustParse(up[i].Document.ID) }
	a, bb, c, d, gone := id(0), id(1), id(2), id(3), uuid.New()
	uris := func(docs []*content.Document) []string {
		var out []string
		for _, doc := range docs {
			out = append(out, doc.URI)
		}
		return out
	}

	for _, tc := range []struct {
		name    string
		ids     []uuid.UUID
		budget  int64
		want    []string
		covered int
	}{
		{"no budget", []uuid.UUID{a, bb, c, d}, 0, []string{"a", "b", "c", "d"}, 4},
		{"budget never reached", []uuid.UUID{a, bb, c, d}, 651, []string{"a", "b", "c", "d"}, 4},
		{"reached exactly by the last", []uuid.UUID{a, bb, c, d}, 650, []string{"a", "b", "c", "d"}, 4},
		{"crossed by the second", []uuid.UUID{a, bb, c, d}, 101, []string{"a", "b"}, 2},
		{"reached exactly by the first", []uuid.UUID{a, bb, c, d}, 100, []string{"a"}, 1},
		{"the first is read even when larger", []uuid.UUID{bb, a}, 10, []string{"b"}, 1},
		{"a missing document takes no bytes", []uuid.UUID{gone, a, gone, c, d}, 250, []string{"a", "c"}, 4},
		{"an id listed twice counts once", []uuid.UUID{a, a, d, c}, 151, []string{"a", "d", "c"}, 4},
		{"in the order given", []uuid.UUID{d, c, bb, a}, 300, []string{"d", "c", "b"}, 3},
	} {
		docs, _, covered, err := b.store.GetDocumentsWithStates(b.ctx, tc.ids, tc.budget)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, uris(docs), tc.name)
		require.Equal(t, tc.covered, covered, tc.name)
	}
	_, _, _, err := b.store.GetDocumentsWithStates(b.ctx, []uuid.UUID{a}, -1)
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	require.ErrorContains(t, err, "max_bytes")
}

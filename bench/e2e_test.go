package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/chunk"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
)

// The generated corpus is the same on every call, its documents are about the size asked for
// and distinct, and each knows its chunk count.
func TestE2ECorpus(t *testing.T) {
	t.Parallel()
	ch, err := chunk.New(chunk.Config{MaxTokens: 128})
	require.NoError(t, err)
	a, b := e2eCorpus(20, 5000, ch), e2eCorpus(20, 5000, ch)
	require.Equal(t, a, b)
	seen := map[string]bool{}
	for _, d := range a {
		require.GreaterOrEqual(t, len(d.text), 5000)
		require.Less(t, len(d.text), 6500)
		require.True(t, strings.HasPrefix(d.text, "# Document "))
		require.Equal(t, len(ch.Split(d.text)), d.chunks)
		require.Greater(t, d.chunks, 1)
		require.False(t, seen[d.text])
		seen[d.text] = true
	}
}

// indexDirect stores exactly the chunks the chunker makes, searchable at once; the counters
// count statements and commands.
func TestIndexDirect(t *testing.T) {
	t.Parallel()
	ch, err := chunk.New(chunk.Config{MaxTokens: 64})
	require.NoError(t, err)
	emb, err := embed.NewHashing(embed.HashingConfig{Dimension: 64})
	require.NoError(t, err)
	store, err := embedded.Open(t.TempDir(), 64)
	require.NoError(t, err)
	defer store.Close()
	doc := e2eCorpus(1, 3000, ch)[0]
	n, err := indexDirect(t.Context(), ch, emb, store, 4, "s", "d", "u.md", doc.text+" zqprobeword")
	require.NoError(t, err)
	require.Equal(t, len(ch.Split(doc.text+" zqprobeword")), n)
	got, err := store.Count(t.Context(), vector.Filter{DocumentIDs: []string{"d"}})
	require.NoError(t, err)
	require.Equal(t, n, got)
	q, err := emb.Embed(t.Context(), []string{"zqprobeword"})
	require.NoError(t, err)
	hits, err := store.Search(t.Context(), q[0], 1, vector.Filter{SourceIDs: []string{"s"}})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.Equal(t, "d", hits[0].DocumentID)

	var c counters
	c.TraceQueryStart(t.Context(), nil, pgxQueryStart())
	c.TraceBatchQuery(t.Context(), nil, pgxBatchQuery())
	c.options().RedisCommands(3)
	require.EqualValues(t, 2, c.pg.Load())
	require.EqualValues(t, 3, c.redis.Load())
	s := e2eSample(100, 400, 2*time.Second, 300*time.Millisecond, 500, 50)
	require.Equal(t, Sample{"docs/s": 50, "chunks/s": 200, "CPU ms/doc": 3, "PG stmts/doc": 5, "Redis cmds/doc": 0.5, "docs": 100, "chunks": 400}, s)
}

// The ceiling's pipelines store exactly the chunker's chunks of every document, at 1 and 2
// pipelines, and a count that does not match is a correctness failure.
func TestCeilingPipelines(t *testing.T) {
	t.Parallel()
	ch, err := chunk.New(chunk.Config{MaxTokens: 64})
	require.NoError(t, err)
	emb, err := embed.NewHashing(embed.HashingConfig{Dimension: 16})
	require.NoError(t, err)
	docs := e2eCorpus(40, 2000, ch)
	chunks := 0
	for _, d := range docs {
		chunks += d.chunks
	}
	e := &e2eRunner{docs: docs, chunks: chunks, env: &Env{Dir: t.TempDir()}}
	for _, conc := range []int{1, 2} {
		s, err := e.ceilingSubject(conc, ch, emb, 4).Run(t.Context(), false)
		require.NoError(t, err)
		require.EqualValues(t, len(docs), s["docs"])
		require.EqualValues(t, chunks, s["chunks"])
	}
	e.chunks++
	_, err = e.ceilingSubject(2, ch, emb, 4).Run(t.Context(), false)
	require.ErrorIs(t, err, ErrCorrectness)
}

// freshWait polls until the timeout, then calls the probe lost.
func TestFreshWait(t *testing.T) {
	t.Parallel()
	require.NoError(t, freshWait(context.Background(), time.Now(), "w"))
	err := freshWait(context.Background(), time.Now().Add(-freshTimeout-time.Second), "w")
	require.True(t, errors.Is(err, ErrCorrectness), "%v", err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, freshWait(ctx, time.Now(), "w"), context.Canceled)
}

func pgxQueryStart() pgx.TraceQueryStartData { return pgx.TraceQueryStartData{SQL: "SELECT 1"} }
func pgxBatchQuery() pgx.TraceBatchQueryData { return pgx.TraceBatchQueryData{SQL: "SELECT 1"} }

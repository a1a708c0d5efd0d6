// Package vectortest is the conformance suite for vector.Store: every implementation (embedded,
// milvus) runs Run, and stores that persist to a directory also run RunPersistence. The suite
// knows the Store interface only, never an implementation.
package vectortest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// scoreDelta is how far a reported cosine may stray from the exact one: float32 arithmetic and
// a server's own normalisation both cost a few ulps.
const scoreDelta = 1e-4

// Run checks that stores from open behave as vector.Store promises. Every subtest calls open once
// and runs in parallel with the others, so open must return a new, empty store of dimension dim,
// isolated from every other store it returns (its own directory, its own collection).
//
// Run closes each store it gets (t.Cleanup), so open must not; open may register its own
// cleanups for anything else (dropping a collection), which then run after Close.
func Run(t *testing.T, open func(t *testing.T, dim int) vector.Store) {
	t.Helper()

	t.Run("UpsertThenCount", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.Equal(t, 8, s.Dimension())

		recs := append(docRecords("src-1", "doc-a", 3, 8, 1), docRecords("src-1", "doc-b", 2, 8, 2)...)
		recs = append(recs, docRecords("src-2", "doc-c", 4, 8, 3)...)
		require.NoError(t, s.Upsert(ctx, recs))

		requireCount(t, s, vector.Filter{}, 9)
		requireCount(t, s, vector.Filter{SourceIDs: []string{"src-1"}}, 5)
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a"}}, 3)
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a", "doc-c"}}, 7)
		requireCount(t, s, vector.Filter{SourceIDs: []string{"src-1"}, DocumentIDs: []string{"doc-a", "doc-c"}}, 3)
		requireCount(t, s, vector.Filter{SourceIDs: []string{"nope"}}, 0)
	})

	t.Run("EmptyUpsertIsNoop", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.Upsert(ctx, nil))
		require.NoError(t, s.Upsert(ctx, []vector.Record{}))
		requireCount(t, s, vector.Filter{}, 0)
	})

	t.Run("UpsertSameIDsOverwrites", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		first := docRecords("src-1", "doc-a", 3, 8, 10)
		require.NoError(t, s.Upsert(ctx, first))

		second := docRecords("src-1", "doc-a", 3, 8, 11)
		for i := range second {
			second[i].Text = fmt.Sprintf("rewritten %d", i)
			second[i].Title = "Rewritten"
		}
		require.NoError(t, s.Upsert(ctx, second))
		requireCount(t, s, vector.Filter{}, 3)

		for i := range second {
			hits := search(t, s, second[i].Vector, 1, vector.Filter{})
			require.Len(t, hits, 1)
			requireRecord(t, second[i], hits[0])
			require.InDelta(t, 1, hits[0].Score, scoreDelta)
		}
		// The old vectors are gone: searching with one finds the new record, not an exact match.
		hits := search(t, s, first[0].Vector, 10, vector.Filter{})
		require.Len(t, hits, 3)
		for _, h := range hits {
			require.True(t, strings.HasPrefix(h.Text, "rewritten"), "stale text %q", h.Text)
		}
	})

	t.Run("WrongDimensionWritesNothing", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		kept := docRecords("src-1", "doc-a", 1, 8, 20)
		require.NoError(t, s.Upsert(ctx, kept))

		changed := kept[0]
		changed.Text = "must not be written"
		changed.Vector = randomVector(rand.New(rand.NewPCG(21, 21)), 8)
		fresh := docRecords("src-1", "doc-b", 2, 8, 22)
		bad := docRecords("src-1", "doc-c", 1, 9, 23)[0]
		empty := docRecords("src-1", "doc-d", 1, 8, 24)[0]
		empty.Vector = nil

		for _, batch := range [][]vector.Record{
			{changed, fresh[0], bad, fresh[1]},
			{changed, empty},
			{bad},
		} {
			err := s.Upsert(ctx, batch)
			require.Error(t, err)
			require.ErrorIs(t, err, errs.ErrInvalidArgument)
			transient, _ := errs.IsTransient(err)
			require.False(t, transient, "a wrong dimension must not be retried")
		}

		requireCount(t, s, vector.Filter{}, 1)
		hits := search(t, s, kept[0].Vector, 10, vector.Filter{})
		require.Len(t, hits, 1)
		requireRecord(t, kept[0], hits[0])
	})

	t.Run("SearchWrongDimension", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-a", 2, 8, 30)))
		_, err := s.Search(ctx, make([]float32, 7), 3, vector.Filter{})
		require.ErrorIs(t, err, errs.ErrInvalidArgument)
	})

	t.Run("SearchBestFirstWithCosine", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		// Vectors in the plane of the first two axes at known angles from the query (angle 0),
		// inserted out of order so the store has to sort.
		degrees := []float64{60, 0, 135, 10, 90, 180, 30}
		recs := make([]vector.Record, len(degrees))
		for i, d := range degrees {
			recs[i] = record("src-1", "doc-a", i, atAngle(8, d))
		}
		require.NoError(t, s.Upsert(ctx, recs))

		sorted := append([]float64(nil), degrees...)
		sort.Float64s(sorted)

		// The query is not unit length: cosine ignores length.
		query := atAngle(8, 0)
		for i := range query {
			query[i] *= 3
		}
		hits := search(t, s, query, 100, vector.Filter{})
		require.Len(t, hits, len(degrees))
		for i, h := range hits {
			require.Equal(t, recs[indexOf(degrees, sorted[i])].ID, h.ID, "rank %d", i)
			require.InDelta(t, math.Cos(sorted[i]*math.Pi/180), h.Score, scoreDelta, "rank %d", i)
		}

		hits = search(t, s, query, 3, vector.Filter{})
		require.Len(t, hits, 3)
		for i, h := range hits {
			require.Equal(t, recs[indexOf(degrees, sorted[i])].ID, h.ID)
		}

		// A query at 90 degrees turns the order around the circle.
		hits = search(t, s, atAngle(8, 90), 2, vector.Filter{})
		require.Len(t, hits, 2)
		require.Equal(t, recs[indexOf(degrees, 90)].ID, hits[0].ID)
		require.InDelta(t, 1, hits[0].Score, scoreDelta)
		require.Equal(t, recs[indexOf(degrees, 60)].ID, hits[1].ID) // 30 degrees away; 135 is 45 away
		require.InDelta(t, math.Cos(30*math.Pi/180), hits[1].Score, scoreDelta)
	})

	t.Run("SearchFilters", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		var recs []vector.Record
		recs = append(recs, docRecords("src-1", "doc-a", 3, 8, 40)...)
		recs = append(recs, docRecords("src-1", "doc-b", 3, 8, 41)...)
		recs = append(recs, docRecords("src-2", "doc-c", 3, 8, 42)...)
		recs = append(recs, docRecords("src-3", "doc-d", 3, 8, 43)...)
		require.NoError(t, s.Upsert(ctx, recs))
		query := randomVector(rand.New(rand.NewPCG(44, 44)), 8)

		cases := []struct {
			name   string
			filter vector.Filter
			docs   []string
		}{
			{"empty matches all", vector.Filter{}, []string{"doc-a", "doc-b", "doc-c", "doc-d"}},
			{"empty slices match all", vector.Filter{SourceIDs: []string{}, DocumentIDs: []string{}}, []string{"doc-a", "doc-b", "doc-c", "doc-d"}},
			{"one source", vector.Filter{SourceIDs: []string{"src-1"}}, []string{"doc-a", "doc-b"}},
			{"two sources", vector.Filter{SourceIDs: []string{"src-2", "src-3"}}, []string{"doc-c", "doc-d"}},
			{"documents", vector.Filter{DocumentIDs: []string{"doc-b", "doc-d"}}, []string{"doc-b", "doc-d"}},
			{"source and documents intersect", vector.Filter{SourceIDs: []string{"src-1"}, DocumentIDs: []string{"doc-b", "doc-c"}}, []string{"doc-b"}},
			{"unknown source", vector.Filter{SourceIDs: []string{"nope"}}, nil},
			{"unknown document", vector.Filter{DocumentIDs: []string{"nope"}}, nil},
			{"disjoint", vector.Filter{SourceIDs: []string{"src-2"}, DocumentIDs: []string{"doc-a"}}, nil},
		}
		for _, c := range cases {
			hits := search(t, s, query, 100, c.filter)
			require.Equal(t, c.docs, hitDocuments(hits), c.name)
			require.Len(t, hits, 3*len(c.docs), c.name)
			requireBestFirst(t, hits)
			requireCount(t, s, c.filter, 3*len(c.docs))

			// topK still applies inside a filter.
			if len(c.docs) > 0 {
				top := search(t, s, query, 2, c.filter)
				require.Len(t, top, 2, c.name)
				require.Equal(t, hits[0].ID, top[0].ID, c.name)
			}
		}
	})

	t.Run("SearchSeesWriteAtOnce", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		rng := rand.New(rand.NewPCG(50, 50))
		for i := range 20 {
			r := record("src-1", "doc-a", i, randomVector(rng, 8))
			require.NoError(t, s.Upsert(ctx, []vector.Record{r}))
			hits := search(t, s, r.Vector, 1, vector.Filter{})
			require.Len(t, hits, 1)
			require.Equal(t, r.ID, hits[0].ID, "write %d not visible", i)
			requireCount(t, s, vector.Filter{}, i+1)
		}
		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 10))
		hits := search(t, s, randomVector(rng, 8), 100, vector.Filter{})
		require.Len(t, hits, 10)
		require.NoError(t, s.DeleteSource(ctx, "src-1"))
		hits = search(t, s, randomVector(rng, 8), 100, vector.Filter{})
		require.Empty(t, hits)
	})

	t.Run("DeleteDocumentAll", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-a", 6, 8, 60)))
		other := docRecords("src-1", "doc-b", 4, 8, 61)
		require.NoError(t, s.Upsert(ctx, other))

		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 0))
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a"}}, 0)
		requireCount(t, s, vector.Filter{}, 4)
		hits := search(t, s, other[0].Vector, 100, vector.Filter{})
		require.Equal(t, []string{"doc-b"}, hitDocuments(hits))
		require.Len(t, hits, 4)
	})

	t.Run("DeleteDocumentFromIndex", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-a", 6, 8, 70)))
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-b", 6, 8, 71)))

		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 3))
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a"}}, 3)
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-b"}}, 6)
		q := randomVector(rand.New(rand.NewPCG(72, 72)), 8)
		require.Equal(t, []int{0, 1, 2}, chunkIndexes(search(t, s, q, 100, vector.Filter{DocumentIDs: []string{"doc-a"}})))
		require.Equal(t, []int{0, 1, 2, 3, 4, 5}, chunkIndexes(search(t, s, q, 100, vector.Filter{DocumentIDs: []string{"doc-b"}})))

		// Beyond the last chunk: nothing to do.
		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 3))
		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 100))
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a"}}, 3)
	})

	t.Run("DeleteSource", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-a", 3, 8, 80)))
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-b", 3, 8, 81)))
		kept := docRecords("src-2", "doc-c", 3, 8, 82)
		require.NoError(t, s.Upsert(ctx, kept))

		require.NoError(t, s.DeleteSource(ctx, "src-1"))
		requireCount(t, s, vector.Filter{SourceIDs: []string{"src-1"}}, 0)
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-a", "doc-b"}}, 0)
		requireCount(t, s, vector.Filter{}, 3)
		hits := search(t, s, kept[1].Vector, 100, vector.Filter{})
		require.Equal(t, []string{"doc-c"}, hitDocuments(hits))
		requireRecord(t, kept[1], hits[0])
	})

	t.Run("DeleteMissingIsNoop", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		require.NoError(t, s.DeleteDocument(ctx, "nope", 0))
		require.NoError(t, s.DeleteSource(ctx, "nope"))
		require.NoError(t, s.Upsert(ctx, docRecords("src-1", "doc-a", 2, 8, 90)))
		require.NoError(t, s.DeleteDocument(ctx, "nope", 0))
		require.NoError(t, s.DeleteSource(ctx, "nope"))
		requireCount(t, s, vector.Filter{}, 2)
	})

	t.Run("EmptyStore", func(t *testing.T) {
		t.Parallel()
		_, s := setup(t, open, 8)
		hits := search(t, s, randomVector(rand.New(rand.NewPCG(100, 100)), 8), 10, vector.Filter{})
		require.Empty(t, hits)
		hits = search(t, s, randomVector(rand.New(rand.NewPCG(101, 101)), 8), 10, vector.Filter{SourceIDs: []string{"src-1"}})
		require.Empty(t, hits)
		requireCount(t, s, vector.Filter{}, 0)
	})

	t.Run("HitCarriesRecord", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 8)
		r := vector.Record{
			ID:          vector.ChunkID("doc-ü", 7),
			SourceID:    "src-ß",
			DocumentID:  "doc-ü",
			ChunkIndex:  7,
			Text:        "Install on Linux: run `make` — then \"pipeline dev\".\nSecond line ✓",
			Title:       "Getting started / Installation",
			URI:         "https://example.com/docs/install?lang=en#linux",
			HeadingPath: "Install > Linux",
			StartOffset: 1 << 33, // beyond 32 bits on purpose
			EndOffset:   1<<33 + 512,
			Vector:      randomVector(rand.New(rand.NewPCG(110, 110)), 8),
		}
		require.NoError(t, s.Upsert(ctx, []vector.Record{r}))
		hits := search(t, s, r.Vector, 5, vector.Filter{})
		require.Len(t, hits, 1)
		requireRecord(t, r, hits[0])
		require.InDelta(t, 1, hits[0].Score, scoreDelta)

		// Empty optional fields come back empty.
		bare := vector.Record{ID: vector.ChunkID("doc-bare", 0), SourceID: "src-ß", DocumentID: "doc-bare",
			Vector: randomVector(rand.New(rand.NewPCG(111, 111)), 8)}
		require.NoError(t, s.Upsert(ctx, []vector.Record{bare}))
		hits = search(t, s, bare.Vector, 1, vector.Filter{})
		require.Len(t, hits, 1)
		requireRecord(t, bare, hits[0])
	})

	t.Run("ConcurrentWritersAndReaders", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 16)
		const workers, docs, chunks = 6, 9, 6
		var g errgroup.Group
		for w := range workers {
			g.Go(func() error {
				rng := rand.New(rand.NewPCG(uint64(w), 120))
				source := fmt.Sprintf("src-%d", w%2)
				for d := range docs {
					doc := fmt.Sprintf("w%d-doc-%d", w, d)
					recs := make([]vector.Record, chunks)
					for i := range recs {
						recs[i] = record(source, doc, i, randomVector(rng, 16))
					}
					if err := s.Upsert(ctx, recs); err != nil {
						return err
					}
					// Read your own write while the others write.
					hits, err := s.Search(ctx, recs[2].Vector, 10, vector.Filter{DocumentIDs: []string{doc}})
					if err != nil {
						return err
					}
					if len(hits) != chunks || hits[0].ID != recs[2].ID {
						return fmt.Errorf("%s: %d hits after upsert, first %v", doc, len(hits), hitIDs(hits))
					}
					if _, err := s.Search(ctx, randomVector(rng, 16), 5, vector.Filter{}); err != nil {
						return err
					}
					if _, err := s.Count(ctx, vector.Filter{SourceIDs: []string{source}}); err != nil {
						return err
					}
					switch d % 3 {
					case 0:
						err = s.DeleteDocument(ctx, doc, 0)
					case 1:
						err = s.DeleteDocument(ctx, doc, 3)
					}
					if err != nil {
						return err
					}
				}
				// A source of its own, written and dropped while the others go on.
				tmp := fmt.Sprintf("tmp-%d", w)
				if err := s.Upsert(ctx, []vector.Record{record(tmp, "tmp-doc-"+tmp, 0, randomVector(rng, 16))}); err != nil {
					return err
				}
				return s.DeleteSource(ctx, tmp)
			})
		}
		require.NoError(t, g.Wait())

		// Per worker: docs 0,3,6 deleted; 1,4,7 keep 3 chunks; 2,5,8 keep 6.
		perWorker := 3*3 + 3*6
		requireCount(t, s, vector.Filter{}, workers*perWorker)
		requireCount(t, s, vector.Filter{SourceIDs: []string{"src-0"}}, workers/2*perWorker)
		for w := range workers {
			requireCount(t, s, vector.Filter{SourceIDs: []string{fmt.Sprintf("tmp-%d", w)}}, 0)
			for d := range docs {
				want := []int{0, 3, 6}[d%3]
				requireCount(t, s, vector.Filter{DocumentIDs: []string{fmt.Sprintf("w%d-doc-%d", w, d)}}, want)
			}
		}
		hits := search(t, s, randomVector(rand.New(rand.NewPCG(121, 121)), 16), 1000, vector.Filter{})
		require.Len(t, hits, workers*perWorker)
		requireBestFirst(t, hits)
	})

	t.Run("LargeBatch", func(t *testing.T) {
		t.Parallel()
		ctx, s := setup(t, open, 64)
		const n = 2000
		rng := rand.New(rand.NewPCG(130, 130))
		recs := make([]vector.Record, n)
		for i := range recs {
			recs[i] = record(fmt.Sprintf("src-%d", i%4), fmt.Sprintf("doc-%d", i/50), i%50, randomVector(rng, 64))
		}
		require.NoError(t, s.Upsert(ctx, recs))
		requireCount(t, s, vector.Filter{}, n)
		requireCount(t, s, vector.Filter{SourceIDs: []string{"src-1"}}, n/4)
		requireCount(t, s, vector.Filter{DocumentIDs: []string{"doc-7"}}, 50)

		for _, i := range []int{0, 1234, n - 1} {
			hits := search(t, s, recs[i].Vector, 10, vector.Filter{})
			require.Len(t, hits, 10)
			requireBestFirst(t, hits)
			requireRecord(t, recs[i], hits[0])
			require.InDelta(t, 1, hits[0].Score, scoreDelta)
		}
	})
}

// RunPersistence checks that a store which keeps its data in a directory gets it all back after
// Close and a reopen, deletes included, and refuses to reopen with another dimension. open opens
// (or creates) the store in dir; unlike Run's, it reports the error so refusals can be checked.
// RunPersistence closes every store it opens, so open must not.
func RunPersistence(t *testing.T, open func(t *testing.T, dir string, dim int) (vector.Store, error)) {
	t.Helper()

	mustOpen := func(t *testing.T, dir string, dim int) vector.Store {
		t.Helper()
		s, err := open(t, dir, dim)
		require.NoError(t, err)
		require.Equal(t, dim, s.Dimension())
		return s
	}

	t.Run("ReopenKeepsWritesAndDeletes", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		dir := t.TempDir()
		s := mustOpen(t, dir, 8)

		a := docRecords("src-1", "doc-a", 6, 8, 200)
		b := docRecords("src-1", "doc-b", 4, 8, 201)
		c := docRecords("src-2", "doc-c", 3, 8, 202)
		d := docRecords("src-3", "doc-d", 2, 8, 203)
		for _, batch := range [][]vector.Record{a, b, c, d} {
			require.NoError(t, s.Upsert(ctx, batch))
		}
		a[1].Text = "rewritten"
		a[1].Vector = randomVector(rand.New(rand.NewPCG(204, 204)), 8)
		require.NoError(t, s.Upsert(ctx, []vector.Record{a[1]}))
		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 4))
		require.NoError(t, s.DeleteDocument(ctx, "doc-b", 0))
		require.NoError(t, s.DeleteSource(ctx, "src-3"))
		require.NoError(t, s.Close())

		want := append(append([]vector.Record(nil), a[:4]...), c...)
		s = mustOpen(t, dir, 8)
		requireContents(t, s, want)

		// Writes after a reopen survive the next one too.
		e := docRecords("src-2", "doc-e", 2, 8, 205)
		require.NoError(t, s.Upsert(ctx, e))
		require.NoError(t, s.DeleteDocument(ctx, "doc-a", 3))
		require.NoError(t, s.Close())

		want = append(append(append([]vector.Record(nil), a[:3]...), c...), e...)
		s = mustOpen(t, dir, 8)
		requireContents(t, s, want)
		require.NoError(t, s.Close())
	})

	t.Run("ReopenEmpty", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := mustOpen(t, dir, 8)
		require.NoError(t, s.Close())
		s = mustOpen(t, dir, 8)
		requireCount(t, s, vector.Filter{}, 0)
		require.NoError(t, s.Close())
	})

	t.Run("ReopenWithOtherDimensionFails", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		dir := t.TempDir()
		s := mustOpen(t, dir, 8)
		recs := docRecords("src-1", "doc-a", 3, 8, 210)
		require.NoError(t, s.Upsert(ctx, recs))
		require.NoError(t, s.Close())

		other, err := open(t, dir, 16)
		if err == nil {
			_ = other.Close()
		}
		require.Error(t, err)
		require.ErrorIs(t, err, errs.ErrFailedPrecondition)
		require.Contains(t, err.Error(), "8")
		require.Contains(t, err.Error(), "16")

		// The refusal changed nothing.
		s = mustOpen(t, dir, 8)
		requireContents(t, s, recs)
		require.NoError(t, s.Close())
	})
}

func setup(t *testing.T, open func(t *testing.T, dim int) vector.Store, dim int) (context.Context, vector.Store) {
	t.Helper()
	s := open(t, dim)
	require.NotNil(t, s)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return context.Background(), s
}

// record builds a fully populated record of a document's chunk.
func record(source, doc string, index int, vec []float32) vector.Record {
	return vector.Record{
		ID:          vector.ChunkID(doc, index),
		SourceID:    source,
		DocumentID:  doc,
		ChunkIndex:  index,
		Text:        fmt.Sprintf("text of %s chunk %d", doc, index),
		Title:       "Title of " + doc,
		URI:         "https://example.com/" + doc,
		HeadingPath: fmt.Sprintf("Part %d > Section %d", index/2, index),
		StartOffset: int64(index) * 100,
		EndOffset:   int64(index)*100 + 99,
		Vector:      vec,
	}
}

// docRecords builds n chunks of one document with random unit vectors drawn from seed.
func docRecords(source, doc string, n, dim int, seed uint64) []vector.Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	recs := make([]vector.Record, n)
	for i := range recs {
		recs[i] = record(source, doc, i, randomVector(rng, dim))
	}
	return recs
}

func randomVector(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var norm float64
	for i := range v {
		x := rng.NormFloat64()
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// atAngle is the unit vector at degrees from the first axis, in the plane of the first two.
func atAngle(dim int, degrees float64) []float32 {
	v := make([]float32, dim)
	rad := degrees * math.Pi / 180
	v[0] = float32(math.Cos(rad))
	v[1] = float32(math.Sin(rad))
	return v
}

func indexOf(xs []float64, x float64) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	panic(fmt.Sprintf("%v not in %v", x, xs))
}

func search(t *testing.T, s vector.Store, q []float32, topK int, f vector.Filter) []vector.Hit {
	t.Helper()
	hits, err := s.Search(context.Background(), q, topK, f)
	require.NoError(t, err)
	requireBestFirst(t, hits)
	return hits
}

func requireCount(t *testing.T, s vector.Store, f vector.Filter, want int) {
	t.Helper()
	n, err := s.Count(context.Background(), f)
	require.NoError(t, err)
	require.Equal(t, want, n, "count of %+v", f)
}

func requireBestFirst(t *testing.T, hits []vector.Hit) {
	t.Helper()
	for i := 1; i < len(hits); i++ {
		require.GreaterOrEqual(t, hits[i-1].Score, hits[i].Score, "hits out of order at %d", i)
	}
}

// requireRecord checks every field of the hit against want. A store may leave the hit's vector
// empty; if it returns one, it must be want's (up to normalisation error).
func requireRecord(t *testing.T, want vector.Record, hit vector.Hit) {
	t.Helper()
	got := hit.Record
	if len(got.Vector) > 0 {
		require.Len(t, got.Vector, len(want.Vector))
		for i := range want.Vector {
			require.InDelta(t, want.Vector[i], got.Vector[i], scoreDelta, "vector[%d] of %s", i, want.ID)
		}
	}
	want.Vector, got.Vector = nil, nil
	require.Equal(t, want, got)
}

// requireContents checks that s holds exactly want: the count, and each record found by its own
// vector with every field intact.
func requireContents(t *testing.T, s vector.Store, want []vector.Record) {
	t.Helper()
	requireCount(t, s, vector.Filter{}, len(want))
	for _, r := range want {
		hits := search(t, s, r.Vector, 1, vector.Filter{DocumentIDs: []string{r.DocumentID}})
		require.Len(t, hits, 1, r.ID)
		requireRecord(t, r, hits[0])
		require.InDelta(t, 1, hits[0].Score, scoreDelta, r.ID)
	}
}

// hitDocuments lists the distinct document ids of hits, sorted.
func hitDocuments(hits []vector.Hit) []string {
	seen := map[string]bool{}
	var docs []string
	for _, h := range hits {
		if !seen[h.DocumentID] {
			seen[h.DocumentID] = true
			docs = append(docs, h.DocumentID)
		}
	}
	sort.Strings(docs)
	return docs
}

func chunkIndexes(hits []vector.Hit) []int {
	idx := make([]int, len(hits))
	for i, h := range hits {
		idx[i] = h.ChunkIndex
	}
	sort.Ints(idx)
	return idx
}

func hitIDs(hits []vector.Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

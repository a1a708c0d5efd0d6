package embedded_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
)

const (
	benchRecords = 100_000
	benchDim     = 384
)

// BenchmarkSearch scans 100k 384-dimensional vectors for the top 10 and reports searches/s.
// The store is built once: a benchmark with sub-benchmarks runs its own body once.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	s, err := embedded.Open(b.TempDir(), benchDim, quiet)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })

	rng := rand.New(rand.NewPCG(1, 1))
	recs := make([]vector.Record, benchRecords)
	for i := range recs {
		doc := fmt.Sprintf("doc-%d", i/50)
		recs[i] = vector.Record{
			ID: vector.ChunkID(doc, i%50), DocumentID: doc, ChunkIndex: i % 50,
			SourceID: fmt.Sprintf("src-%d", i%10),
			Text:     "some chunk text of a typical length, which the scan never reads",
			Vector:   unit(rng, benchDim),
		}
	}
	for batch := range slices.Chunk(recs, 5000) {
		require.NoError(b, s.Upsert(ctx, batch))
	}
	queries := make([][]float32, 64)
	for i := range queries {
		queries[i] = unit(rng, benchDim)
	}

	run := func(name string, f vector.Filter) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				hits, err := s.Search(ctx, queries[i%len(queries)], 10, f)
				if err != nil || len(hits) != 10 {
					b.Fatalf("%d hits, %v", len(hits), err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "searches/s")
		})
	}
	run("all", vector.Filter{})
	run("one_source_of_10", vector.Filter{SourceIDs: []string{"src-3"}})
	run("one_document", vector.Filter{DocumentIDs: []string{"doc-77"}})

	b.Run("all_concurrent", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(3, 3))
			for pb.Next() {
				if _, err := s.Search(ctx, queries[rng.IntN(len(queries))], 10, vector.Filter{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "searches/s")
	})
}

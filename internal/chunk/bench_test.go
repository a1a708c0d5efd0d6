package chunk_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

// BenchmarkSplit measures throughput on about 4 MB of generated Markdown with the default
// settings. The target is at least twice LangChain.js MarkdownTextSplitter's ~78 MB/s, on one
// core: go test -run '^$' -bench Split -cpu 1 ./internal/chunk
func BenchmarkSplit(b *testing.B) {
	doc := markdown(1, 4<<20)
	c, err := chunk.New(chunk.Config{})
	require.NoError(b, err)
	c.Split(doc) // warm the piece cache, as a long-running worker's is
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	var n int
	cpu0 := cpuTime()
	for b.Loop() {
		n = len(c.Split(doc))
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		// Throughput per CPU second, which waiting for a busy machine's cores does not dilute.
		b.ReportMetric(float64(len(doc))*float64(b.N)/cpu/1e6, "MB/cpu-s")
	}
	b.ReportMetric(float64(n), "chunks")
}

// BenchmarkSplitCold is BenchmarkSplit with a new Chunker, so an empty piece cache, for each
// document: the worst case, a process's first document.
func BenchmarkSplitCold(b *testing.B) {
	doc := markdown(1, 4<<20)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		c, err := chunk.New(chunk.Config{})
		require.NoError(b, err)
		c.Split(doc)
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(len(doc))*float64(b.N)/cpu/1e6, "MB/cpu-s")
	}
}

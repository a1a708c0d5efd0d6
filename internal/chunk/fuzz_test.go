package chunk_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

// FuzzSplit checks Split's invariants on arbitrary input and settings. The seed corpus in
// testdata/fuzz/FuzzSplit holds Markdown with fences and tables, CJK, and invalid UTF-8; run
// go test ./internal/chunk -run '^$' -fuzz FuzzSplit -fuzztime 60s to search further.
func FuzzSplit(f *testing.F) {
	f.Add("# A\n\ntext. more text.\n\n## B\n\n```\n# no\n```\n", uint16(0), uint16(0))
	f.Add("| a |\n| b |\n\nwords words words", uint16(3), uint16(1))
	f.Add("\xff\xfe\xe4\xb8 東京。😀 \x7f", uint16(1), uint16(5))
	f.Fuzz(func(t *testing.T, text string, maxSel, overlapSel uint16) {
		// Small limits cut the most; keep the Chunkers few so their caches are reused.
		max := []int{16, 17, 24, 40, 64, 512}[int(maxSel)%6]
		overlap := []int{chunk.NoOverlap, 1, max / 4, max / 2}[int(overlapSel)%4]
		c := newChunker(t, chunk.Config{MaxTokens: max, OverlapTokens: overlap})
		chunks := split(t, c, text)
		require.Equal(t, chunks, c.Split(text), "deterministic")
	})
}

// FuzzCountTokens holds CountTokens to the library's Count on arbitrary input.
func FuzzCountTokens(f *testing.F) {
	f.Add("hello world")
	f.Add("  \n\n \r\n  x 's 'LL 12345 😀 \xff")
	f.Add("| a | b |\n|:-----------------|:----:|-------------------:|\n| 1 | 2 |") // cut into parts
	lib, err := tokenizer.Get(tokenizer.Cl100kBase)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, text string) {
		c := newChunker(t, chunk.Config{})
		want, err := lib.Count(text)
		require.NoError(t, err)
		require.Equal(t, want, c.CountTokens(text), "%q", text)
	})
}

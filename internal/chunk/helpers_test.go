package chunk_test

import (
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

// chunkers are shared by config: each Chunker's pooled piece cache is a few megabytes, which
// fuzzing would otherwise allocate at every input.
var chunkers sync.Map // chunk.Config -> *chunk.Chunker

func newChunker(t testing.TB, cfg chunk.Config) *chunk.Chunker {
	t.Helper()
	if c, ok := chunkers.Load(cfg); ok {
		return c.(*chunk.Chunker)
	}
	c, err := chunk.New(cfg)
	require.NoError(t, err)
	got, _ := chunkers.LoadOrStore(cfg, c)
	return got.(*chunk.Chunker)
}

// runeStarts marks the offsets where a rune of text starts, decoding forward as Go does
// (an invalid byte is a one-byte rune), plus len(text).
func runeStarts(text string) []bool {
	starts := make([]bool, len(text)+1)
	for i := range text {
		starts[i] = true
	}
	starts[len(text)] = true
	return starts
}

// requireInvariants checks what Split promises for any input: chunks in order with strictly
// increasing starts, each the trimmed input[Start:End], cut at rune boundaries, within the
// token limit by CountTokens, and together covering every non-space rune.
func requireInvariants(t testing.TB, c *chunk.Chunker, input string, chunks []chunk.Chunk) {
	t.Helper()
	if strings.TrimSpace(input) == "" {
		require.Empty(t, chunks, "no chunks for blank input")
		return
	}
	require.NotEmpty(t, chunks)
	max := c.Config().MaxTokens
	starts := runeStarts(input)
	valid := utf8.ValidString(input)
	// cover[i] > 0 when byte i lies in some chunk: +1 at Start, -1 at End, summed.
	cover := make([]int, len(input)+1)
	prevStart := -1
	for i, ch := range chunks {
		require.Equal(t, i, ch.Index)
		require.True(t, 0 <= ch.Start && ch.Start < ch.End && ch.End <= len(input),
			"chunk %d offsets [%d,%d) in %d bytes", i, ch.Start, ch.End, len(input))
		require.Equal(t, input[ch.Start:ch.End], ch.Text, "chunk %d text", i)
		require.Greater(t, ch.Start, prevStart, "chunk %d start", i)
		prevStart = ch.Start
		require.Equal(t, strings.TrimSpace(ch.Text), ch.Text, "chunk %d is trimmed", i)
		require.True(t, starts[ch.Start] && starts[ch.End], "chunk %d cut inside a rune", i)
		if valid {
			require.True(t, utf8.ValidString(ch.Text), "chunk %d valid UTF-8", i)
		}
		require.LessOrEqual(t, ch.Tokens, max, "chunk %d over the limit", i)
		require.Equal(t, c.CountTokens(ch.Text), ch.Tokens, "chunk %d token count", i)
		cover[ch.Start]++
		cover[ch.End]--
	}
	depth := 0
	for i := 0; i < len(input); {
		r, n := utf8.DecodeRuneInString(input[i:])
		for j := i; j < i+n; j++ {
			depth += cover[j]
			if !unicode.IsSpace(r) {
				require.Positive(t, depth, "byte %d (%q) is in no chunk", j, input[i:i+n])
			}
		}
		i += n
	}
}

// split splits input and checks the invariants.
func split(t testing.TB, c *chunk.Chunker, input string) []chunk.Chunk {
	t.Helper()
	chunks := c.Split(input)
	requireInvariants(t, c, input, chunks)
	return chunks
}

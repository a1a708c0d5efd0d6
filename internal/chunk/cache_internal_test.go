package chunk

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCountPartsMatchesBPE holds the cut-and-sum count of long pieces to a whole-piece merge,
// on Markdown table rules (the pieces it is for) and on random runs of the bytes around them.
func TestCountPartsMatchesBPE(t *testing.T) {
	t.Parallel()
	loadVocabulary()
	r := rand.New(rand.NewPCG(1, 2))
	var pieces []string
	for range 300 {
		var b strings.Builder
		for range 1 + r.IntN(6) {
			b.WriteString("|")
			if r.IntN(2) == 0 {
				b.WriteString(":")
			}
			b.WriteString(strings.Repeat("-", 1+r.IntN(120)))
			if r.IntN(3) == 0 {
				b.WriteString(":")
			}
		}
		b.WriteString("|\n")
		pieces = append(pieces, b.String())
	}
	alphabet := []string{"|", ":", "-", "=", "+", "*", "_", "#", " ", "\n", ".", "é", "—", "😀", "\xff"}
	for range 2000 {
		var b strings.Builder
		for range 16 + r.IntN(200) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		pieces = append(pieces, b.String())
	}
	cuts := 0
	var c pieceCache
	for _, p := range pieces {
		require.Equal(t, bpe(p), c.countParts(p), "%q", p)
		require.Equal(t, bpe(p), c.countLong(p), "%q, cached", p)
		for i := 1; i < len(p); i++ {
			if pair := uint16(p[i-1]) | uint16(p[i])<<8; pairInToken[pair/64]&(1<<(pair%64)) == 0 {
				cuts++
				break
			}
		}
	}
	require.Greater(t, cuts, len(pieces)/2, "most pieces have a cut, so the sums are exercised")
	// The pairs a table rule is cut at occur in no token; "--" does.
	for _, pair := range []string{"-|", "|:", ":|"} {
		p := uint16(pair[0]) | uint16(pair[1])<<8
		require.Zero(t, pairInToken[p/64]&(1<<(p%64)), pair)
	}
	p := uint16('-') | uint16('-')<<8
	require.NotZero(t, pairInToken[p/64]&(1<<(p%64)))
}

// TestChunkerKeepsCachesAcrossCollections checks that a Chunker's idle split state, and so its
// warm piece cache, survives garbage collections (a sync.Pool's would not), and that it keeps
// no more than maxIdle of them.
func TestChunkerKeepsCachesAcrossCollections(t *testing.T) {
	c, err := New(Config{})
	require.NoError(t, err)
	require.NotEmpty(t, c.Split("# Title\n\nSome words to count."))
	for range 3 {
		runtime.GC()
	}
	st := c.get()
	require.NotNil(t, st.cache.table, "the piece cache was dropped")
	require.Positive(t, st.cache.used)
	c.put(st)

	states := make([]*splitState, c.maxIdle+2)
	for i := range states {
		states[i] = c.get()
	}
	for _, st := range states {
		c.put(st)
	}
	require.Len(t, c.idle, c.maxIdle)
}

// TestTokenIndexMatchesPieceByPiece holds the index that build makes (pieces found in one
// pass, counted in another, buckets filled without walking them) to its definition: the
// pieces nextPiece finds one after another, each counted by countAt, and for each bucket the
// first piece starting in or after it.
func TestTokenIndexMatchesPieceByPiece(t *testing.T) {
	t.Parallel()
	loadVocabulary()
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Word", " the", " ", "  ", "\n", "\n\n", "\t", ".", "|", "-", ":", "'s",
		"123", "é", "東京", "😀", "\x7f", "\xff", "```", "# ", strings.Repeat("x", 70), strings.Repeat(" ", 130)}
	var st splitState
	for range 500 {
		var b strings.Builder
		for range 1 + r.IntN(300) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		text := b.String()
		st.idx.build(text, &st.cache)
		var starts, cum []int32
		total := 0
		for i := 0; i < len(text); {
			e, skip := nextPiece(text, i)
			starts, cum = append(starts, int32(i)), append(cum, int32(total))
			if !skip {
				total += st.cache.countAt(text, i, e)
			}
			i = e
		}
		starts, cum = append(starts, int32(len(text))), append(cum, int32(total))
		require.Equal(t, starts, st.idx.starts, "%q", text)
		require.Equal(t, cum, st.idx.cum, "%q", text)
		require.Len(t, st.idx.buckets, len(text)>>bucketShift+2)
		for bk, k := range st.idx.buckets {
			first := len(starts) - 1
			for j, s := range starts {
				if int(s) >= bk<<bucketShift {
					first = j
					break
				}
			}
			require.Equal(t, int32(first), k, "bucket %d of %q", bk, text)
		}
	}
}

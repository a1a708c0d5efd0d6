package chunk_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

// Fragments that stress the splitter: Markdown structure in odd places, characters of every
// width, spaces the tokenizer treats specially, and (in invalid mode) broken UTF-8.
var (
	oddLines = []string{
		"# h1", "## h2 ##", "###### h6", "####### seven", "#nospace", "   ### indented",
		"    # code-indented", "#", "## ", "Title\n=====", "Sub\n---", "---", "***", "- - -",
		"```", "```go", "~~~~", "``` has ` backtick", "| a | b |", "|---|---|", "  | x |",
		"- item one", "* item", "1. first", "2) second", "> quote", "", "", "",
		"\t\tindented with tabs", "trailing spaces   ", "<div>html</div>",
	}
	oddWords = []string{
		"word", "Word", "it's", "they'll", "WE'RE", "don't", "'s", "12345678", "3.14159",
		"東京", "日本語のテキスト", "。", "！", "😀", "👍🏽", "🇯🇵", "é", "e\u0301", "ß", "ſ",
		"\u00a0", "\u3000", "\u2028", "\u0085", "\v", "\f", "\x1c", "\x7f", "—", "…",
		"https://example.com/a/b?c=d", "foo_bar_baz", "x", "a.b.c", "!!!", "?!", "\"quoted.\"",
		"(paren.)", "**bold.**", "`code`", "\r\n", "\n", "\t", "  ", "'", "²³", "١٢٣",
	}
	invalidBits = []string{"\xff", "\xfe", "\xe4\xb8", "\xc3", "\x80", "\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf"}
)

// oddDoc returns a random document of about size bytes; seeded, so failures reproduce.
func oddDoc(r *rand.Rand, size int, invalid bool) string {
	var b strings.Builder
	for b.Len() < size {
		switch r.IntN(12) {
		case 0, 1:
			b.WriteString(oddLines[r.IntN(len(oddLines))])
			b.WriteByte('\n')
		case 2:
			// A long word, sometimes far over any limit.
			w := oddWords[r.IntN(len(oddWords))]
			b.WriteString(strings.Repeat(w, 1+r.IntN(200)))
		case 3:
			b.WriteString("\n\n")
		case 4:
			fence := []string{"```", "~~~"}[r.IntN(2)]
			b.WriteString(fence + "\n")
			for range r.IntN(30) {
				fmt.Fprintf(&b, "line %d # not a heading\n", r.IntN(100))
			}
			if r.IntN(4) > 0 {
				b.WriteString(fence + "\n")
			}
		case 5:
			for range 1 + r.IntN(20) {
				fmt.Fprintf(&b, "| %s | %d |\n", oddWords[r.IntN(len(oddWords))], r.IntN(1000))
			}
		case 6:
			if invalid {
				b.WriteString(invalidBits[r.IntN(len(invalidBits))])
			}
		default:
			for range 1 + r.IntN(30) {
				b.WriteString(oddWords[r.IntN(len(oddWords))])
				b.WriteString([]string{" ", " ", " ", ". ", ", ", "", "\n"}[r.IntN(7)])
			}
		}
	}
	return b.String()
}

func TestSplitProperties(t *testing.T) {
	t.Parallel()
	configs := []chunk.Config{
		{MaxTokens: 16, OverlapTokens: chunk.NoOverlap},
		{MaxTokens: 16, OverlapTokens: 8},
		{MaxTokens: 17, OverlapTokens: 3},
		{MaxTokens: 40, OverlapTokens: 20},
		{MaxTokens: 64},
		{MaxTokens: 128, OverlapTokens: 1},
		{},
		{MaxTokens: 1000, OverlapTokens: 200},
	}
	sizes := []int{0, 1, 10, 100, 1000, 5000, 20000}
	r := rand.New(rand.NewPCG(2026, 11))
	for i := range 120 {
		cfg := configs[i%len(configs)]
		size := sizes[r.IntN(len(sizes))]
		invalid := i%3 == 0
		var doc string
		if i%4 == 3 {
			doc = markdown(uint64(i), size)
		} else {
			doc = oddDoc(r, size, invalid)
		}
		t.Run(fmt.Sprintf("%d/%d-%d/%d", i, cfg.MaxTokens, cfg.OverlapTokens, size), func(t *testing.T) {
			t.Parallel()
			c := newChunker(t, cfg)
			chunks := split(t, c, doc)
			require.Equal(t, chunks, c.Split(doc), "deterministic")
		})
	}
}

// TestCountTokensMatchesLibrary holds the package's own pre-tokenizer and merge to the
// library's Count, on generated text full of the pattern's corner cases.
func TestCountTokensMatchesLibrary(t *testing.T) {
	t.Parallel()
	lib, err := tokenizer.Get(tokenizer.Cl100kBase)
	require.NoError(t, err)
	c := newChunker(t, chunk.Config{})
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 3000 {
		var s string
		if i%2 == 0 {
			var b strings.Builder
			for range r.IntN(15) {
				b.WriteString(oddWords[r.IntN(len(oddWords))])
				if r.IntN(3) == 0 {
					b.WriteString(invalidBits[r.IntN(len(invalidBits))])
				}
			}
			s = b.String()
		} else {
			s = oddDoc(r, r.IntN(300), i%4 == 1)
		}
		if i%10 == 0 {
			// A long piece of random letters and symbols, merged in many steps.
			var b strings.Builder
			for range 30 + r.IntN(200) {
				b.WriteByte("abcdefghijklmnopqrstuvwxyzAEIOU"[r.IntN(31)])
			}
			s += b.String() + strings.Repeat("=-", r.IntN(100))
		}
		want, err := lib.Count(s)
		require.NoError(t, err)
		require.Equal(t, want, c.CountTokens(s), "%q", s)
	}
	// Long pieces take the heap merge: runs of spaces, symbols, letters, and mixes.
	for _, s := range []string{
		strings.Repeat(" ", 300), strings.Repeat(" ", 5000) + "x", "\n" + strings.Repeat("  ", 80),
		strings.Repeat("-", 129), "|" + strings.Repeat("-----|", 40), strings.Repeat("=", 33),
		strings.Repeat("abc", 40), strings.Repeat("z", 1000), strings.Repeat("東京", 50),
		strings.Repeat("\xff", 40), strings.Repeat("!?", 70) + "\r\n\r\n",
	} {
		want, err := lib.Count(s)
		require.NoError(t, err)
		require.Equal(t, want, c.CountTokens(s), "%q", s)
	}
	doc := markdown(3, 200_000)
	want, err := lib.Count(doc)
	require.NoError(t, err)
	require.Equal(t, want, c.CountTokens(doc))
}

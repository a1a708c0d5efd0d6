package chunk_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/chunk"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestConfig(t *testing.T) {
	t.Parallel()

	require.Equal(t, chunk.Config{MaxTokens: 512, OverlapTokens: 64}, chunk.Config{}.WithDefaults())
	require.Equal(t, chunk.Config{MaxTokens: 100, OverlapTokens: 25}, chunk.Config{MaxTokens: 100}.WithDefaults())
	require.Equal(t, chunk.Config{MaxTokens: 512, OverlapTokens: 0},
		chunk.Config{OverlapTokens: chunk.NoOverlap}.WithDefaults())

	c := newChunker(t, chunk.Config{})
	require.Equal(t, "md1/cl100k/512/64", c.Fingerprint())
	require.Equal(t, "md1/cl100k/16/0",
		newChunker(t, chunk.Config{MaxTokens: 16, OverlapTokens: chunk.NoOverlap}).Fingerprint())

	for _, tc := range []struct {
		cfg   chunk.Config
		field string
	}{
		{chunk.Config{MaxTokens: 15}, "max_tokens"},
		{chunk.Config{MaxTokens: 8193}, "max_tokens"},
		{chunk.Config{MaxTokens: -1}, "max_tokens"},
		{chunk.Config{MaxTokens: 100, OverlapTokens: 51}, "overlap_tokens"},
		{chunk.Config{MaxTokens: 100, OverlapTokens: -2}, "overlap_tokens"},
	} {
		_, err := chunk.New(tc.cfg)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, "%+v", tc.cfg)
		require.ErrorContains(t, err, tc.field)
		require.ErrorIs(t, tc.cfg.WithDefaults().Validate(), errs.ErrInvalidArgument)
	}
	for _, cfg := range []chunk.Config{
		{MaxTokens: 16, OverlapTokens: 8},
		{MaxTokens: 8192, OverlapTokens: 4096},
		{MaxTokens: 100, OverlapTokens: chunk.NoOverlap},
	} {
		_, err := chunk.New(cfg)
		require.NoError(t, err, "%+v", cfg)
	}
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	c := newChunker(t, chunk.Config{})
	require.Equal(t, 0, c.CountTokens(""))
	require.Equal(t, 2, c.CountTokens("hello world"))
	// Known cl100k_base counts.
	require.Equal(t, 10, c.CountTokens("The quick brown fox jumps over the lazy dog."))
	require.Equal(t, 1, c.CountTokens("\xff"))
}

func TestSplitBlankInput(t *testing.T) {
	t.Parallel()
	c := newChunker(t, chunk.Config{})
	for _, in := range []string{"", " ", "\n\n\t \r\n", "\u00a0\u3000"} {
		require.Nil(t, c.Split(in), "%q", in)
	}
}

// section builds a Markdown section whose body is n sentences, to size tests in tokens.
func section(heading string, n int) string {
	var b strings.Builder
	if heading != "" {
		b.WriteString(heading + "\n\n")
	}
	for i := range n {
		fmt.Fprintf(&b, "Sentence number %d of this section says something. ", i)
	}
	b.WriteString("\n\n")
	return b.String()
}

func paths(chunks []chunk.Chunk) []string {
	var out []string
	for _, c := range chunks {
		out = append(out, strings.Join(c.HeadingPath, " > "))
	}
	return out
}

// chunkHolding returns the first chunk whose text contains s whole.
func chunkHolding(t *testing.T, chunks []chunk.Chunk, s string) chunk.Chunk {
	t.Helper()
	for _, c := range chunks {
		if strings.Contains(c.Text, s) {
			return c
		}
	}
	require.Failf(t, "no chunk holds the text", "%q", s)
	return chunk.Chunk{}
}

func TestSplit(t *testing.T) {
	t.Parallel()

	codeLines := func(n int) string {
		var b strings.Builder
		b.WriteString("```python\n")
		for i := range n {
			fmt.Fprintf(&b, "value_%d = compute(value_%d, %d)  # step\n", i, i, i*7)
		}
		b.WriteString("```\n")
		return b.String()
	}
	table := "| name | value |\n|------|-------|\n| alpha | 1 |\n| beta | 2 |\n| gamma | 3 |\n"
	prose := strings.Repeat(section("", 8), 1)

	for _, tc := range []struct {
		name  string
		cfg   chunk.Config
		input string
		check func(t *testing.T, input string, chunks []chunk.Chunk)
	}{
		{
			name:  "one small document is one chunk",
			cfg:   chunk.Config{},
			input: "# Title\n\nSome text.\n",
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Len(t, chunks, 1)
				require.Equal(t, "# Title\n\nSome text.", chunks[0].Text)
				require.Equal(t, []string{"Title"}, chunks[0].HeadingPath)
			},
		},
		{
			name: "nested headings give heading paths",
			cfg:  chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: section("# Install", 4) + section("## Linux", 4) + section("### Debian", 4) +
				section("## macOS ##", 4) + section("# Use", 4),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Equal(t, []string{"Install", "Install > Linux", "Install > Linux > Debian",
					"Install > macOS", "Use"}, paths(chunks))
				for _, c := range chunks {
					require.True(t, strings.HasPrefix(c.Text, "#"), "each section starts a chunk: %q", c.Text)
				}
			},
		},
		{
			name:  "skipped levels and text before the first heading",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: section("", 4) + section("# A", 4) + section("### C", 4) + section("## B", 4),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Equal(t, []string{"", "A", "A > C", "A > B"}, paths(chunks))
				require.Nil(t, chunks[0].HeadingPath)
			},
		},
		{
			name: "headings inside code fences are not headings",
			cfg:  chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: section("# Real", 3) + "```sh\n# not a heading\necho hi\n```\n\n~~~\n## nor this\n~~~\n\n" +
				section("", 3),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				for _, c := range chunks {
					require.Equal(t, []string{"Real"}, c.HeadingPath)
				}
			},
		},
		{
			name:  "setext headings",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: "Guide\n=====\n\n" + section("", 4) + "Setup\n-----\n\n" + section("", 4),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Equal(t, []string{"Guide", "Guide > Setup"}, paths(chunks))
				require.True(t, strings.HasPrefix(chunks[1].Text, "Setup\n---"))
			},
		},
		{
			name:  "a code block that fits is kept whole",
			cfg:   chunk.Config{MaxTokens: 300, OverlapTokens: chunk.NoOverlap},
			input: prose + codeLines(12) + "\n" + prose,
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 1)
				chunkHolding(t, chunks, strings.TrimSpace(codeLines(12)))
			},
		},
		{
			name:  "a table that fits is kept whole",
			cfg:   chunk.Config{MaxTokens: 100, OverlapTokens: chunk.NoOverlap},
			input: prose + table + "\n" + prose,
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				chunkHolding(t, chunks, strings.TrimSpace(table))
			},
		},
		{
			name:  "an oversized code block is split at line ends",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: codeLines(40),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 4)
				for _, c := range chunks {
					require.True(t, c.Start == 0 || input[c.Start-1] == '\n', "starts a line: %q", c.Text)
					require.True(t, c.End == len(input) || input[c.End] == '\n', "ends a line: %q", c.Text)
				}
			},
		},
		{
			name:  "a long paragraph is split at sentence ends",
			cfg:   chunk.Config{MaxTokens: 50, OverlapTokens: chunk.NoOverlap},
			input: section("", 30),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 5)
				for _, c := range chunks {
					require.True(t, strings.HasPrefix(c.Text, "Sentence"), "%q", c.Text)
					require.True(t, strings.HasSuffix(c.Text, "something."), "%q", c.Text)
				}
			},
		},
		{
			name:  "a giant word is split and still covered",
			cfg:   chunk.Config{MaxTokens: 32, OverlapTokens: 8},
			input: "Before. " + strings.Repeat("supercalifragilistic", 500) + " after.",
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 20)
			},
		},
		{
			name:  "a giant run of one letter",
			cfg:   chunk.Config{MaxTokens: 16, OverlapTokens: chunk.NoOverlap},
			input: strings.Repeat("a", 5000),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 1)
			},
		},
		{
			name:  "CJK and emoji are never cut inside a character",
			cfg:   chunk.Config{MaxTokens: 16, OverlapTokens: 4},
			input: strings.Repeat("東京は日本の首都です。", 30) + strings.Repeat("😀👍🏽🇯🇵", 40) + strings.Repeat("漢字", 300),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 10)
				for _, c := range chunks {
					require.True(t, utf8.ValidString(c.Text))
				}
			},
		},
		{
			// Each stray continuation byte is a rune of its own; cuts must not skip past them.
			name:  "a run of invalid bytes is cut into full chunks",
			cfg:   chunk.Config{MaxTokens: 24, OverlapTokens: chunk.NoOverlap},
			input: "x " + strings.Repeat("\xa0", 3000),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Less(t, len(chunks), 60)
			},
		},
		{
			name:  "overlap repeats the previous chunk's end within the limit",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: 16},
			input: section("# Long", 40),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Greater(t, len(chunks), 5)
				c := newChunker(t, chunk.Config{})
				for i := 1; i < len(chunks); i++ {
					prev, cur := chunks[i-1], chunks[i]
					require.Less(t, cur.Start, prev.End, "chunk %d overlaps chunk %d", i, i-1)
					shared := c.CountTokens(input[cur.Start:prev.End])
					require.True(t, shared >= 8 && shared <= 16+4, "about 16 tokens shared, got %d", shared)
					require.Equal(t, []string{"Long"}, cur.HeadingPath)
				}
			},
		},
		{
			name:  "no overlap into a new section",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: 16},
			input: section("# A", 4) + section("# B", 4),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				require.Len(t, chunks, 2)
				require.True(t, strings.HasPrefix(chunks[1].Text, "# B"))
			},
		},
		{
			name:  "offsets point into the input with CRLF line ends",
			cfg:   chunk.Config{MaxTokens: 32, OverlapTokens: 8},
			input: strings.ReplaceAll(section("# Title", 10)+table+section("## Sub", 5), "\n", "\r\n"),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				for _, c := range chunks {
					require.Equal(t, input[c.Start:c.End], c.Text)
				}
				require.Equal(t, []string{"Title", "Sub"}, chunks[len(chunks)-1].HeadingPath)
			},
		},
		{
			name:  "a lone heading moves to the next chunk",
			cfg:   chunk.Config{MaxTokens: 64, OverlapTokens: chunk.NoOverlap},
			input: "# Top\n\n" + section("", 2) + "## Next\n\n" + section("", 3),
			check: func(t *testing.T, input string, chunks []chunk.Chunk) {
				for _, c := range chunks {
					require.False(t, strings.HasSuffix(c.Text, "## Next"), "%q", c.Text)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newChunker(t, tc.cfg)
			chunks := split(t, c, tc.input)
			tc.check(t, tc.input, chunks)
			require.Equal(t, chunks, c.Split(tc.input), "deterministic")
		})
	}
}

func TestSplitConcurrent(t *testing.T) {
	t.Parallel()
	c := newChunker(t, chunk.Config{MaxTokens: 64})
	docs := make([]string, 8)
	want := make([][]chunk.Chunk, len(docs))
	for i := range docs {
		docs[i] = markdown(uint64(100+i), 20_000)
		want[i] = c.Split(docs[i])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range docs {
				d := (i + g) % len(docs)
				require.Equal(t, want[d], c.Split(docs[d]))
			}
		})
	}
	wg.Wait()
}

// TestSplitLongText covers texts too long to index at once (over a gigabyte), which are split
// in segments at line breaks.
func TestSplitLongText(t *testing.T) {
	t.Parallel()
	c, err := chunk.New(chunk.Config{MaxTokens: 64})
	require.NoError(t, err)
	chunk.SetMaxSegment(c, 3000)
	for _, doc := range []string{
		markdown(9, 40_000),
		strings.Repeat("東京", 5000),               // no line breaks: cut between characters
		strings.Repeat("\xa0", 4000) + "\nend\n", // nor here, and no valid characters
	} {
		chunks := split(t, c, doc)
		require.Greater(t, len(chunks), 10)
	}
}

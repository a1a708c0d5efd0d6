package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func words(s string) int { return len(strings.Fields(s)) }

func testLimits() limits { return limits{Tokens: 5, Chars: 30, Count: words} }

func TestQualityVerbatim(t *testing.T) {
	t.Parallel()
	doc := "# Title\n\nOne two three. Four five six.\n\nSeven eight nine ten eleven twelve"
	var q quality
	q.addDoc(doc, []string{"# Title\n\nOne two three.", "three. Four five six.", "Seven eight nine ten eleven twelve"}, nil, testLimits())
	f := q.figures()
	require.Equal(t, 3.0, f["chunks"])
	require.Equal(t, 1.0, f["coverage"])
	require.Equal(t, 1.0, f["verbatim"])
	require.Equal(t, 1.0, f["boundary"], "sentence ends, and the document's end")
	require.Equal(t, 1.0, f["over tokens"], "the last chunk has 6 words")
	require.Equal(t, 6.0, f["max tokens"])
	require.Equal(t, 1.0, f["over chars"])
}

func TestQualityLoss(t *testing.T) {
	t.Parallel()
	doc := "alpha beta gamma delta\n\nepsilon zeta eta theta"
	var q quality
	// "gamma delta" and "theta" are in no chunk; the first chunk ends mid-sentence.
	q.addDoc(doc, []string{"alpha beta", "epsilon zeta eta"}, nil, testLimits())
	f := q.figures()
	require.InDelta(t, 5.0/8, f["coverage"], 1e-9)
	require.Equal(t, 0.5, f["boundary"], "only the last chunk")
}

func TestQualityParagraphBoundary(t *testing.T) {
	t.Parallel()
	doc := "a b c\n\nd e f\n## G\nh i j"
	var q quality
	q.addDoc(doc, []string{"a b c", "d e f", "h", "j"}, nil, testLimits())
	require.InDelta(t, 3.0/4, q.figures()["boundary"], 1e-9, "a blank line, a heading, not ' i', the document's end")
	require.InDelta(t, 8.0/10, q.figures()["coverage"], 1e-9)
}

// A splitter that re-renders Markdown and repeats the section heading in every chunk still has
// its words found, and what it drops is still missed.
func TestQualityRerendered(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("## Parameters\n\n")
	for i := range 400 {
		fmt.Fprintf(&b, "word%d filler text here. ", i)
	}
	doc := b.String()
	body := strings.TrimPrefix(doc, "## Parameters\n\n")
	// Chunks of about 600 bytes cut between words, each repeating about 60 bytes of the last.
	var chunks []string
	for start := 0; start < len(body); {
		end := min(len(body), start+600)
		if end < len(body) {
			end = start + strings.LastIndexByte(body[start:end], ' ')
		}
		chunks = append(chunks, "## Parameters\n"+strings.ReplaceAll(body[start:end], "filler", "*filler*"))
		if end == len(body) {
			break
		}
		start = strings.LastIndexByte(body[:end-60], ' ')
	}
	var q quality
	q.addDoc(doc, chunks, nil, testLimits())
	f := q.figures()
	require.Equal(t, 1.0, f["coverage"])
	require.Equal(t, 0.0, f["verbatim"])

	// Drop every "text" from the last half of the chunks: about 200 of the 1601 words go missing.
	for i := len(chunks) / 2; i < len(chunks); i++ {
		chunks[i] = strings.ReplaceAll(chunks[i], " text", "")
	}
	var q2 quality
	q2.addDoc(doc, chunks, nil, testLimits())
	require.InDelta(t, 1-200.0/1601, q2.figures()["coverage"], 0.01)
}

func TestEndsSentence(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"It works.": true, "Really?)": true, "done.**": true, "東京。": true, "see:": true,
		"no end": false, "a.b": false, "```": false,
	} {
		require.Equal(t, want, endsSentence(s), s)
	}
}

package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"

	"github.com/pipeline-dev/pipeline/internal/chunk"
)

func TestStatOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, Stat{Median: 3, Min: 1, Max: 9}, statOf([]float64{9, 1, 3}))
	require.Equal(t, Stat{Median: 2.5, Min: 1, Max: 9}, statOf([]float64{9, 1, 2, 3}))
}

// measure runs a warm-up round and then rotates the order, and its ratios say "above 1: the
// project is better" for either direction of metric.
func TestMeasureAlternatesAndCompares(t *testing.T) {
	t.Parallel()
	var order []string
	subject := func(name string, project bool, value float64) *Subject {
		return &Subject{Name: name, Project: project, Run: func(_ context.Context, warmup bool) (Sample, error) {
			if !warmup {
				order = append(order, name)
			}
			return Sample{"v": value}, nil
		}}
	}
	p := &Prepared{
		Subjects: []*Subject{subject("ours", true, 10), subject("a", false, 5), subject("b", false, 20)},
		Compare:  [][2]string{{"ours", "a"}, {"ours", "b"}},
	}
	c := &Case{Name: "t", Primary: Metric{Name: "v", Format: "%.0f"}}
	res, err := measure(context.Background(), c, p, 3, func(string, ...any) {})
	require.NoError(t, err)
	require.Equal(t, []string{"ours", "a", "b", "a", "b", "ours", "b", "ours", "a"}, order)
	require.Equal(t, 2.0, res.Comparisons[0].Ratio)
	require.Equal(t, 0.5, res.Comparisons[1].Ratio)
	require.Len(t, res.Subjects[0].Runs, 3)

	c.Primary.LowerBetter = true
	res, err = measure(context.Background(), c, p, 1, func(string, ...any) {})
	require.NoError(t, err)
	require.Equal(t, 0.5, res.Comparisons[0].Ratio)

	var sb strings.Builder
	printReport(&sb, &Report{Cases: []*CaseResult{res}})
	require.Contains(t, sb.String(), "| t v (lower is better; ratio = peer/project): ours vs a | 10 (10-10) | 5 (5-5)    | 0.50  |")

	// Summary metrics replace the primary one: one row per metric and pair, each in its own direction.
	c.Summary = []Metric{{Name: "v", Format: "%.0f"}, {Name: "v", Format: "%.0f", LowerBetter: true}}
	res, err = measure(context.Background(), c, p, 1, func(string, ...any) {})
	require.NoError(t, err)
	require.Len(t, res.Comparisons, 4)
	require.Equal(t, []float64{2, 0.5, 0.5, 2}, []float64{res.Comparisons[0].Ratio, res.Comparisons[1].Ratio, res.Comparisons[2].Ratio, res.Comparisons[3].Ratio})
	require.True(t, res.Comparisons[2].LowerBetter)
}

func TestCheckProjectChunks(t *testing.T) {
	t.Parallel()
	lib, err := tokenizer.Get(tokenizer.Cl100kBase)
	require.NoError(t, err)
	lim := limits{Tokens: 16, Chars: 1000, Count: func(s string) int { n, _ := lib.Count(s); return n }}
	c, err := chunk.New(chunk.Config{MaxTokens: 16, OverlapTokens: 4})
	require.NoError(t, err)
	doc := "# Title\n\nA first paragraph of some length, to be cut. A second sentence follows it here.\n\n## Next\n\nMore text to close."
	chunks := c.Split(doc)
	require.GreaterOrEqual(t, len(chunks), 3)
	require.NoError(t, checkProjectChunks(doc, chunks, lim))

	broken := func(f func([]chunk.Chunk) []chunk.Chunk) error {
		return checkProjectChunks(doc, f(append([]chunk.Chunk(nil), chunks...)), lim)
	}
	for name, f := range map[string]func([]chunk.Chunk) []chunk.Chunk{
		"a chunk lost": func(cs []chunk.Chunk) []chunk.Chunk {
			cs = append(cs[:1], cs[2:]...)
			for i := range cs {
				cs[i].Index = i
			}
			return cs
		},
		"the end lost":       func(cs []chunk.Chunk) []chunk.Chunk { return cs[:len(cs)-1] },
		"a wrong count":      func(cs []chunk.Chunk) []chunk.Chunk { cs[1].Tokens++; return cs },
		"text not at offset": func(cs []chunk.Chunk) []chunk.Chunk { cs[1].Text = strings.ToUpper(cs[1].Text); return cs },
		"over the limit": func(cs []chunk.Chunk) []chunk.Chunk {
			cs[0].End = cs[1].End
			cs[0].Text = doc[cs[0].Start:cs[0].End]
			cs[0].Tokens = lim.Count(cs[0].Text)
			return cs
		},
	} {
		err := broken(f)
		require.True(t, errors.Is(err, ErrCorrectness), "%s: %v", name, err)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

func TestSearchReportsTheServersError(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	_, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: "handbook"})
	require.NoError(t, err)

	res := b.runClient(t, searchCmd(), "how", "do I restore files", "--source", "handbook", "--top-k", "3")
	if res.err != nil && strings.Contains(res.err.Error(), "UNIMPLEMENTED") {
		// Search is not built on the server yet: the message says so, in the server's words.
		require.Equal(t, exitError, exitCode(res.err))
		require.ErrorContains(t, res.err, "search: the server answered UNIMPLEMENTED: ")
		require.ErrorContains(t, res.err, "search needs")
		require.Empty(t, res.stdout)
		return
	}
	// Once the server answers, a search of an empty source finds nothing.
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, "no results")
}

func TestSearchUnknownSourceName(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	res := b.runClient(t, searchCmd(), "anything", "--source", "nope")
	require.ErrorContains(t, res.err, `--source "nope": no source has this name or id`)
	require.Equal(t, exitError, exitCode(res.err))

	res = b.runClient(t, searchCmd(), "anything", "--top-k", "0")
	require.ErrorContains(t, res.err, "--top-k")
}

func TestResolveSources(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	var docs []string
	for range 2 {
		resp, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: "docs"})
		require.NoError(t, err)
		docs = append(docs, resp.GetSource().GetSourceId())
	}
	other := uuid.NewString()
	c, err := dial(&clientSettings{Server: b.addr, Output: "text", Timeout: clientWait})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	ids, err := c.resolveSources(callCtx(t), []string{"docs", strings.ToUpper(other), docs[0]})
	require.NoError(t, err)
	require.ElementsMatch(t, append(docs, other), ids, "a name stands for every source with it; ids pass through, once each")

	ids, err = c.resolveSources(callCtx(t), nil)
	require.NoError(t, err)
	require.Empty(t, ids)
}

func TestPrintResults(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	long := strings.Repeat("word ", 200)
	printResults(&out, []*pipelinev1.SearchResult{
		{Score: 0.87654, Title: "Install on Linux", Uri: "install/linux.md", HeadingPath: "Install on Linux > Permissions",
			Text: "The service user must be able to read\n\nevery folder it backs up."},
		{Score: 0.5, Uri: "glossary.txt", Text: long},
	})
	got := out.String()
	require.Contains(t, got, "1. 0.877  Install on Linux  (install/linux.md)\n   Install on Linux > Permissions\n   The service user must be able to read every folder it backs up.\n")
	require.Contains(t, got, "\n\n2. 0.500  glossary.txt\n   word word")
	second := got[strings.Index(got, "2. "):]
	var text []string
	for _, l := range strings.Split(strings.TrimSpace(second), "\n")[1:] {
		require.LessOrEqual(t, utf8.RuneCountInString(l), snippetWidth+3, "wrapped: %q", l)
		text = append(text, strings.TrimSpace(l))
	}
	joined := strings.Join(text, " ")
	require.LessOrEqual(t, utf8.RuneCountInString(joined), snippetRunes)
	require.True(t, strings.HasSuffix(joined, "…"), "cut text ends with an ellipsis")

	out.Reset()
	printResults(&out, nil)
	require.Equal(t, "no results\n", out.String())
}

func TestSearchJSONOutput(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	res := b.runClient(t, searchCmd(), "restore", "--output", "json")
	if res.err != nil {
		require.ErrorContains(t, res.err, "UNIMPLEMENTED") // until the server implements Search
		require.Empty(t, res.stdout, "no JSON on stdout for an error")
		return
	}
	require.True(t, strings.HasPrefix(strings.TrimSpace(res.stdout), "{"))
}

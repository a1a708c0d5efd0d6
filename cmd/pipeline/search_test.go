package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/server"
)

func TestSearchReportsUnimplemented(t *testing.T) {
	t.Parallel()
	// A server without an embedder and vector store answers Search with UNIMPLEMENTED.
	b := setupServerDeps(t, func(d *server.Deps) { d.Embedder, d.Vectors = nil, nil })
	_, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: "handbook"})
	require.NoError(t, err)

	for _, output := range []string{"text", "json"} {
		res := b.runClient(t, searchCmd(), "how", "do I restore files", "--source", "handbook", "--top-k", "3", "--output", output)
		require.ErrorContains(t, res.err, "search: the server answered UNIMPLEMENTED: ")
		require.ErrorContains(t, res.err, "no embedder and vector store configured", "the server's own words")
		require.Equal(t, exitError, exitCode(res.err))
		require.Empty(t, res.stdout, "nothing on stdout for an error")
	}
}

func TestSearchEmptyServerFindsNothing(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	res := b.runClient(t, searchCmd(), "restore", "a", "folder")
	require.NoError(t, res.err)
	require.Equal(t, "no results\n", res.stdout)

	res = b.runClient(t, searchCmd(), "restore", "--output", "json")
	require.NoError(t, res.err)
	var resp pipelinev1.SearchResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &resp))
	require.Empty(t, resp.GetResults())
}

func TestSearchUnknownSourceName(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	res := b.runClient(t, searchCmd(), "anything", "--source", "nope")
	require.ErrorContains(t, res.err, `--source "nope": no source has this name or id`)
	require.Equal(t, exitNotFound, exitCode(res.err))

	res = b.runClient(t, searchCmd(), "anything", "--top-k", "0")
	require.ErrorContains(t, res.err, "--top-k")
	require.Equal(t, exitUsage, exitCode(res.err))
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

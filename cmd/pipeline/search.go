package main

// `pipeline search` asks SearchService for the chunks nearest to a query.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

const (
	// snippetRunes is how much of a chunk's text the text output shows.
	snippetRunes = 400
	// snippetWidth is the column at which the text output wraps a chunk's text.
	snippetWidth = 96
)

func searchCmd() *cobra.Command {
	var (
		sources []string
		topK    int
	)
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Find the stored chunks nearest to a query",
		Long: `Search embeds QUERY (several arguments are joined with spaces) and prints the nearest
chunks, best first: rank, score, the document's title or uri, the headings above the chunk and
the start of its text. --output json prints the SearchResponse as JSON instead.

--source narrows the search to sources given by name or id; repeat it for several. A name
stands for every source with that name.

Exit code 0 on success (also when nothing is found); errors as for every command
(pipeline help exit-codes).`,
		Example: `  pipeline search "how do I install on macOS"
  pipeline search rotate the api key --source handbook --top-k 3 --output json`,
		Args: cobra.MinimumNArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().StringArrayVar(&sources, "source", nil, "only search this source, by name or id (repeatable)")
	cmd.Flags().IntVarP(&topK, "top-k", "k", 10, "how many results (1-100)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		query := strings.TrimSpace(strings.Join(args, " "))
		if query == "" {
			return usageErrorf("QUERY: give the text to search for")
		}
		if topK < 1 || topK > 100 {
			return usageErrorf("--top-k: want 1-100, got %d", topK)
		}
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.runSearch(cmd.Context(), cmd.OutOrStdout(), query, sources, topK)
	}
	return cmd
}

func (c *client) runSearch(ctx context.Context, out io.Writer, query string, sources []string, topK int) error {
	ids, err := c.resolveSources(ctx, sources)
	if err != nil {
		return err
	}
	cctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.search.Search(cctx, &pipelinev1.SearchRequest{Query: query, SourceIds: ids, TopK: int32(topK)})
	if err != nil {
		return c.callError("search", err)
	}
	if c.settings.Output == "json" {
		b, err := protoJSON.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	printResults(out, resp.GetResults())
	return nil
}

// resolveSources turns each --source value into source ids: an id stays as it is, a name
// becomes the ids of every source with that name. Sources are listed only when a name is given.
func (c *client) resolveSources(ctx context.Context, values []string) ([]string, error) {
	var all []*pipelinev1.Source
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if id, err := uuid.Parse(v); err == nil {
			add(id.String())
			continue
		}
		if all == nil {
			var err error
			if all, err = c.listSources(ctx); err != nil {
				return nil, err
			}
		}
		m := sourcesNamed(all, v)
		if len(m) == 0 {
			return nil, &exitCodeError{code: exitNotFound, err: fmt.Errorf("--source %q: no source has this name or id", v)}
		}
		for _, s := range m {
			add(s.GetSourceId())
		}
	}
	return ids, nil
}

// printResults writes one block per result: rank, score and document, the heading path, and the
// chunk's text, folded to one paragraph, cut at snippetRunes and wrapped at snippetWidth.
func printResults(w io.Writer, results []*pipelinev1.SearchResult) {
	if len(results) == 0 {
		fmt.Fprintln(w, "no results")
		return
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		doc := r.GetUri()
		if t := strings.TrimSpace(r.GetTitle()); t != "" && t != doc {
			doc = t + "  (" + r.GetUri() + ")"
		}
		fmt.Fprintf(w, "%d. %.3f  %s\n", i+1, r.GetScore(), doc)
		if h := strings.TrimSpace(r.GetHeadingPath()); h != "" {
			fmt.Fprintf(w, "   %s\n", h)
		}
		for _, line := range wrap(truncateRunes(strings.Join(strings.Fields(r.GetText()), " "), snippetRunes), snippetWidth) {
			fmt.Fprintf(w, "   %s\n", line)
		}
	}
}

// truncateRunes cuts s to at most n runes, ending with an ellipsis when it cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// wrap breaks s into lines of at most width runes at spaces; a longer word gets a line alone.
func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	curLen := 0
	for _, word := range strings.Fields(s) {
		n := utf8.RuneCountInString(word)
		if curLen > 0 && curLen+1+n > width {
			lines = append(lines, cur.String())
			cur.Reset()
			curLen = 0
		}
		if curLen > 0 {
			cur.WriteByte(' ')
			curLen++
		}
		cur.WriteString(word)
		curLen += n
	}
	if curLen > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

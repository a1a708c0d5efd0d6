package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pipeline-dev/pipeline/internal/htmlmd"
)

// pgDocDir is where Debian's postgresql-doc-15 puts its HTML manual.
const pgDocDir = "/usr/share/doc/postgresql-doc-15/html"

// pgDocInstall is how to get it without upgrading the running Postgres server: a plain
// install of the documentation package also upgrades the server package of the same source.
const pgDocInstall = "apt-get install -y -o APT::Get::Upgrade-By-Source-Package=false postgresql-doc-15"

// Doc is one document of a corpus, as the project's workers see it: Markdown.
type Doc struct {
	Name     string
	Markdown string
}

// Corpus is the Markdown a text case measures on.
type Corpus struct {
	Docs []Doc
	// Bytes is the Markdown's total size.
	Bytes int
	// Pages and Generated count the documents by origin; HTMLBytes is the HTML they came from.
	Pages, Generated int
	HTMLBytes        int
	// Fallback is set when the manual was missing and -short used Substitutes generated pages
	// instead.
	Fallback    bool
	Substitutes int
}

func (c *Corpus) String() string {
	pages := fmt.Sprintf("%d postgresql-doc-15 pages", c.Pages)
	if c.Fallback {
		pages = fmt.Sprintf("%d generated pages standing in for postgresql-doc-15, which is NOT INSTALLED,", c.Substitutes)
	}
	return fmt.Sprintf("%s + %d generated documents, %.1f MB of HTML -> %.1f MB of Markdown (internal/htmlmd)",
		pages, c.Generated, float64(c.HTMLBytes)/1e6, float64(c.Bytes)/1e6)
}

type htmlDoc struct {
	name, html string
}

// loadCorpus converts the PostgreSQL manual's pages (all of them; -short every eighth) and
// generated pages for scale (a few large ones) to Markdown with internal/htmlmd, the path a
// crawled page takes in the service. Without the manual, the full run fails and says how to
// install it; -short falls back to generated pages of the manual's shape, so that CI still
// runs every step (conversion included) on a machine without the package.
func loadCorpus(ctx context.Context, env *Env) (*Corpus, error) {
	var pages []htmlDoc
	fallback := false
	names, err := pgDocPages(env.Options.PGDoc)
	switch {
	case err == nil:
		if env.Short {
			var every []string
			for i := 0; i < len(names); i += 8 {
				every = append(every, names[i])
			}
			names = every
		}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(env.Options.PGDoc, n))
			if err != nil {
				return nil, err
			}
			pages = append(pages, htmlDoc{name: "pg-" + strings.TrimSuffix(n, ".html"), html: string(b)})
		}
	case errors.Is(err, fs.ErrNotExist) && env.Short:
		fmt.Fprintf(os.Stderr, "bench: %s is missing: -short uses generated pages instead; for the real corpus run: %s\n",
			env.Options.PGDoc, pgDocInstall)
		fallback = true
		g := newHTMLGen(2)
		for i := range 150 {
			pages = append(pages, htmlDoc{name: fmt.Sprintf("page-%03d", i), html: g.page(4 << 10 << (i % 4))})
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the corpus, Debian's postgresql-doc-15 HTML, is not in %s; install it with\n  %s\n(never a plain apt-get install: it also upgrades the running Postgres server)",
			env.Options.PGDoc, pgDocInstall)
	default:
		return nil, err
	}
	c := &Corpus{Pages: len(pages), Fallback: fallback}
	if fallback {
		c.Pages, c.Substitutes = 0, len(pages)
	}
	// Generated documents for scale: long single pages, as a whole manual on one page would be.
	sizes := []int{256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}
	if env.Short {
		sizes = []int{256 << 10, 1 << 20}
	}
	g := newHTMLGen(1)
	for i, size := range sizes {
		pages = append(pages, htmlDoc{name: fmt.Sprintf("gen-%d", i), html: g.page(size)})
	}
	c.Generated = len(sizes)
	env.Logf("converting %d pages to Markdown", len(pages))
	docs, err := convertAll(ctx, pages)
	if err != nil {
		return nil, err
	}
	for i, p := range pages {
		c.HTMLBytes += len(p.html)
		if docs[i].Markdown == "" {
			return nil, fmt.Errorf("page %s converted to no text", p.name)
		}
		c.Bytes += len(docs[i].Markdown)
	}
	c.Docs = docs
	return c, nil
}

// pgDocPages lists the manual's pages, sorted.
func pgDocPages(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".html") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no .html pages: %w", dir, fs.ErrNotExist)
	}
	slices.Sort(names)
	return names, nil
}

// convertAll runs htmlmd.Convert over the pages on every core, keeping their order.
func convertAll(ctx context.Context, pages []htmlDoc) ([]Doc, error) {
	docs := make([]Doc, len(pages))
	errs := make([]error, len(pages))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				res, err := htmlmd.Convert(pages[i].html, htmlmd.Options{})
				docs[i], errs[i] = Doc{Name: pages[i].name, Markdown: res.Markdown}, err
			}
		})
	}
	for i := range pages {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return docs, errors.Join(errs...)
}

// writeCorpus writes each document to dir as NNNNN.md, in order, for the peers outside this
// process.
func writeCorpus(dir string, docs []Doc) error {
	for i, d := range docs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.md", i)), []byte(d.Markdown), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// htmlGen makes seeded pages shaped like a technical manual's: nested sections of paragraphs,
// lists, program listings, tables and inline markup, with a long tail of made-up words (real
// text has one; a small vocabulary would flatter every token cache).
//
// madeUpPercent sets the tail: at 2% of words made up (and one in forty a random number),
// distinct words are 3% of the word occurrences of a 4 MB page, near the PostgreSQL manual's 2%.
// (At 20%, 11% are distinct, and the project's warm throughput halves: see
// docs/performance.md.)
const madeUpPercent = 2

type htmlGen struct {
	r *rand.Rand
	b strings.Builder
}

func newHTMLGen(seed uint64) *htmlGen { return &htmlGen{r: rand.New(rand.NewPCG(seed, 15))} }

var genWords = strings.Fields(`the of and to in a is that for it as with be by on not this are or
from at which but have an you were there been one all we their has would when if so no will more
can out up who some could time into only then new like other about over than its also use two these
may any first well way even because most after through where much should between each those before
many system data server table index query column row transaction lock function type value user role
schema backup replication WAL checkpoint vacuum statistics planner join sort hash trigger constraint
parameter configuration connection client session default setting`)

var genSyllables = strings.Fields(`ka lo mi ne ru sa ti vo zen pra qua ster ing tion al er ly ment ous
ive ize con pro re un dis com ex pg sql`)

func (g *htmlGen) word() string {
	if g.r.IntN(100) >= madeUpPercent {
		return genWords[int(float64(len(genWords))*g.r.Float64()*g.r.Float64())]
	}
	var w strings.Builder
	for range 2 + g.r.IntN(3) {
		w.WriteString(genSyllables[g.r.IntN(len(genSyllables))])
	}
	return w.String()
}

func (g *htmlGen) sentence() {
	for i := range 5 + g.r.IntN(22) {
		w := html.EscapeString(g.word())
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			g.b.WriteByte(' ')
		}
		switch g.r.IntN(40) {
		case 0:
			w = "<code>" + w + "</code>"
		case 1:
			w = "<em>" + w + "</em>"
		case 2:
			w = `<a href="sql-` + w + `.html">` + w + "</a>"
		case 3:
			w += ","
		case 4:
			w = fmt.Sprint(g.r.IntN(100000))
		}
		g.b.WriteString(w)
	}
	g.b.WriteString([]string{".", ".", ".", ".", "!", "?", ":"}[g.r.IntN(7)])
}

func (g *htmlGen) para() {
	g.b.WriteString("<p>")
	for i := range 1 + g.r.IntN(7) {
		if i > 0 {
			g.b.WriteByte(' ')
		}
		g.sentence()
	}
	g.b.WriteString("</p>\n")
}

func (g *htmlGen) list() {
	tag := []string{"ul", "ol"}[g.r.IntN(2)]
	g.b.WriteString("<" + tag + ">\n")
	for range 2 + g.r.IntN(7) {
		g.b.WriteString("<li><p>")
		g.sentence()
		g.b.WriteString("</p></li>\n")
	}
	g.b.WriteString("</" + tag + ">\n")
}

func (g *htmlGen) code() {
	g.b.WriteString(`<pre class="programlisting">`)
	for range 2 + g.r.IntN(20) {
		fmt.Fprintf(&g.b, "%sSELECT %s, %s FROM %s WHERE %s &gt; %d;\n", strings.Repeat("    ", g.r.IntN(3)),
			g.word(), g.word(), g.word(), g.word(), g.r.IntN(1000))
	}
	g.b.WriteString("</pre>\n")
}

func (g *htmlGen) table() {
	g.b.WriteString("<table><thead><tr><th>Name</th><th>Type</th><th>Description</th></tr></thead><tbody>\n")
	for range 2 + g.r.IntN(12) {
		fmt.Fprintf(&g.b, "<tr><td><code>%s_%s</code></td><td>%s</td><td>", g.word(), g.word(), g.word())
		g.sentence()
		g.b.WriteString("</td></tr>\n")
	}
	g.b.WriteString("</tbody></table>\n")
}

func (g *htmlGen) heading(level int) {
	fmt.Fprintf(&g.b, "<h%d>%d.%d. %s %s</h%d>\n", level, g.r.IntN(30), g.r.IntN(20), strings.ToUpper(g.word()[:1]), g.word(), level)
}

// page returns an HTML page of about size bytes.
func (g *htmlGen) page(size int) string {
	g.b.Reset()
	g.b.WriteString("<!DOCTYPE html><html><head><title>Generated manual page</title></head><body>\n")
	g.b.WriteString(`<div class="navheader"><a href="index.html">Home</a> | <a href="next.html">Next</a></div>` + "\n<main>\n")
	g.heading(1)
	for g.b.Len() < size {
		switch k := g.r.IntN(20); {
		case k == 0:
			g.heading(2)
		case k < 3:
			g.heading(3 + g.r.IntN(2))
		case k < 12:
			g.para()
		case k < 15:
			g.list()
		case k < 18:
			g.code()
		default:
			g.table()
		}
	}
	g.b.WriteString("</main>\n<div class=\"navfooter\">Prev | Up | Next</div></body></html>\n")
	return g.b.String()
}

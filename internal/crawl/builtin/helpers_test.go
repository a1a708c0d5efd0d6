package builtin_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/builtin"
	"github.com/pipeline-dev/pipeline/internal/logtest"
)

// server is an httptest server on 127.0.0.1 serving routes (404 elsewhere) and logging what
// it was asked for.
type server struct {
	*httptest.Server
	mu  sync.Mutex
	log []request
}

type request struct {
	uri string // path and query
	at  time.Time
}

func newServer(t *testing.T, routes map[string]http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.log = append(s.log, request{uri: r.URL.RequestURI(), at: time.Now()})
		s.mu.Unlock()
		if h := routes[r.URL.RequestURI()]; h != nil {
			h(w, r)
			return
		}
		if h := routes[r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns the request URIs so far, in order.
func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res []string
	for _, r := range s.log {
		res = append(res, r.uri)
	}
	return res
}

// count returns how many requests asked for uri.
func (s *server) count(uri string) int {
	n := 0
	for _, r := range s.requests() {
		if r == uri {
			n++
		}
	}
	return n
}

// layout wraps main content in a page with navigation and a footer, which the crawler must
// follow but not save.
func layout(title, main string) string {
	return `<!doctype html><html><head><title>` + title + `</title></head><body>
<header><nav><a href="/">Home</a> <a href="/about">About</a> <a href="/docs/">Docs</a> <a href="/blog/">Blog</a></nav></header>
<main>` + main + `</main>
<footer><a href="/contact">Contact</a> · Copyright Example Corp</footer>
</body></html>`
}

func htmlPage(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

func typed(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	}
}

func redirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
}

// siteRoutes is a small site: eleven pages under a shared layout, links both ways and a cycle
// (intro -> guide -> advanced -> docs -> intro).
func siteRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/":              htmlPage(layout("Home", `<h1>Welcome</h1><p>Welcome to the example site.</p><p>Read the <a href="/docs/intro">introduction</a>.</p>`)),
		"/about":         htmlPage(layout("About", `<h1>About us</h1><p>We make examples.</p><p>Meet the <a href="team">team</a>.</p>`)),
		"/team":          htmlPage(layout("Team", `<h1>Team</h1><p>Alice and Bob.</p><p><a href="/about">Back</a></p>`)),
		"/contact":       htmlPage(layout("Contact", `<h1>Contact</h1><p>Write to us.</p>`)),
		"/docs/":         htmlPage(layout("Docs", `<h1>Documentation</h1><ul><li><a href="intro">Intro</a></li><li><a href="guide#install">Guide</a></li></ul>`)),
		"/docs/intro":    htmlPage(layout("Intro", `<h1>Introduction</h1><p>Start here.</p><p><a href="guide">Next: the guide</a></p>`)),
		"/docs/guide":    htmlPage(layout("Guide", `<h1>Guide</h1><p id="install">Install it.</p><p><a href="advanced">Advanced</a> <a href="intro">Back</a></p>`)),
		"/docs/advanced": htmlPage(layout("Advanced", `<h1>Advanced</h1><p>Deep things.</p><p><a href="/docs/">Up</a></p>`)),
		"/blog/":         htmlPage(layout("Blog", `<h1>Blog</h1><p><a href="/blog/first">First post</a> <a href="/blog/second">Second post</a></p>`)),
		"/blog/first":    htmlPage(layout("First post", `<article><h1>First post</h1><p>Hello, world.</p></article>`)),
		"/blog/second":   htmlPage(layout("Second post", `<article><h1>Second post</h1><p>Hello again.</p></article>`)),
	}
}

// siteOrder is the breadth-first order of siteRoutes' pages from "/", and their depths.
var siteOrder = []struct {
	path  string
	depth int
}{
	{"/", 0}, {"/about", 1}, {"/docs/", 1}, {"/blog/", 1}, {"/docs/intro", 1}, {"/contact", 1},
	{"/team", 2}, {"/docs/guide", 2}, {"/blog/first", 2}, {"/blog/second", 2},
	{"/docs/advanced", 3},
}

// testConfig is a crawler config for httptest servers: loopback allowed, no politeness delay,
// one fetch at a time, quiet.
func testConfig() builtin.Config {
	return builtin.Config{
		AllowLoopback: true,
		PerHostDelay:  builtin.NoDelay,
		Concurrency:   1,
		Timeout:       10 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

func newCrawler(t *testing.T, cfg builtin.Config) *builtin.Crawler {
	t.Helper()
	c, err := builtin.New(cfg)
	require.NoError(t, err)
	return c
}

// crawlResult is everything one crawl reported.
type crawlResult struct {
	pages    []crawl.Page
	progress crawl.Progress
	updates  []crawl.Progress
	err      error
}

func (r crawlResult) paths(t *testing.T, base string) []string {
	t.Helper()
	var res []string
	for _, p := range r.pages {
		require.True(t, strings.HasPrefix(p.URL, base), "page %s outside %s", p.URL, base)
		res = append(res, strings.TrimPrefix(p.URL, base))
	}
	return res
}

func (r crawlResult) page(t *testing.T, url string) crawl.Page {
	t.Helper()
	for _, p := range r.pages {
		if p.URL == url {
			return p
		}
	}
	require.Failf(t, "page not saved", "%s", url)
	return crawl.Page{}
}

func runCrawl(t *testing.T, c *builtin.Crawler, start string, opts crawl.Options) crawlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var res crawlResult
	res.progress, res.err = c.Crawl(ctx, start, opts,
		func(p crawl.Page) error { res.pages = append(res.pages, p); return nil },
		func(p crawl.Progress) { res.updates = append(res.updates, p) })
	return res
}

// recording sets cfg's logger to one that records every line.
func recording(cfg builtin.Config) (builtin.Config, *logtest.Buffer) {
	rec := &logtest.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(rec, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg, rec
}

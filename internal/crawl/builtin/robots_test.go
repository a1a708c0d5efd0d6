package builtin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestRobotsDisallow(t *testing.T) {
	t.Parallel()
	routes := siteRoutes()
	routes["/robots.txt"] = typed("text/plain", "User-agent: *\nDisallow: /docs/\nAllow: /docs/intro\nDisallow: /*.php$\n")
	srv := newServer(t, routes)
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/about", "/blog/", "/docs/intro", "/contact", "/team", "/blog/first", "/blog/second"}, res.paths(t, srv.URL))
	require.Equal(t, crawl.Progress{Discovered: 10, Fetched: 8, Skipped: 2}, res.progress)
	require.Zero(t, srv.count("/docs/"), "disallowed pages are never requested")
	require.Zero(t, srv.count("/docs/guide"))
	require.Equal(t, 1, srv.count("/robots.txt"))
}

func TestRobotsOwnGroupWins(t *testing.T) {
	t.Parallel()
	routes := siteRoutes()
	routes["/robots.txt"] = typed("text/plain", `# everyone else: go away
User-agent: *
Disallow: /

User-agent: Pipeline-Crawler
Disallow: /blog
`)
	srv := newServer(t, routes)
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/about", "/docs/", "/docs/intro", "/contact", "/team", "/docs/guide", "/docs/advanced"}, res.paths(t, srv.URL))
	require.Zero(t, srv.count("/blog/"))
}

func TestRobotsCrawlDelay(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	srv := newServer(t, map[string]http.HandlerFunc{
		"/robots.txt": typed("text/plain", "User-agent: *\nCrawl-delay: 0.15\n"),
		"/":           htmlPage(`<html><body><p>Start.</p><a href="/a">a</a> <a href="/b">b</a></body></html>`),
		"/a":          htmlPage(`<html><body><p>A.</p></body></html>`),
		"/b":          htmlPage(`<html><body><p>B.</p></body></html>`),
	})
	cfg := testConfig()
	cfg.Concurrency = 4 // the delay, not the concurrency, must space the requests
	res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, 3, res.progress.Fetched)

	srv.mu.Lock()
	log := append([]request(nil), srv.log...)
	srv.mu.Unlock()
	require.Len(t, log, 4)
	// Four requests start at least 3*delay apart in all. Arrival times jitter (a new
	// connection, a busy machine), so check the span, loosely.
	require.GreaterOrEqual(t, log[3].at.Sub(log[0].at), 2*delay)
}

func TestRobotsUnavailable(t *testing.T) {
	t.Parallel()
	routes := siteRoutes()
	routes["/robots.txt"] = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	srv := newServer(t, routes)
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.ErrorContains(t, res.err, "HTTP 500")
	transient, _ := errs.IsTransient(res.err)
	require.True(t, transient, "a robots.txt answering 5xx may heal")
	require.Equal(t, []string{"/robots.txt"}, srv.requests(), "5xx robots.txt disallows everything")

	routes = siteRoutes()
	routes["/robots.txt"] = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }
	srv = newServer(t, routes)
	res = runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, 11, res.progress.Fetched, "4xx robots.txt allows everything")
}

func TestRobotsDisallowsStart(t *testing.T) {
	t.Parallel()
	routes := siteRoutes()
	routes["/robots.txt"] = typed("text/plain", "User-agent: *\nDisallow: /\n")
	srv := newServer(t, routes)
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.ErrorContains(t, res.err, "disallowed by robots.txt")
	require.Equal(t, []string{"/robots.txt"}, srv.requests())
}

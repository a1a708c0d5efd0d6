package builtin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestCrawlSite(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)

	var want []string
	for _, p := range siteOrder {
		want = append(want, p.path)
	}
	require.Equal(t, want, res.paths(t, srv.URL))
	for i, p := range res.pages {
		require.Equal(t, siteOrder[i].depth, p.Depth, p.URL)
	}
	require.Equal(t, crawl.Progress{Discovered: 11, Fetched: 11}, res.progress)
	require.Equal(t, res.progress, res.updates[len(res.updates)-1])

	home := res.page(t, srv.URL+"/")
	require.Equal(t, "Home", home.Title)
	require.Contains(t, home.Markdown, "# Welcome")
	require.Contains(t, home.Markdown, "Welcome to the example site.")
	// Links in content are absolute, to the page's final URL.
	require.Contains(t, home.Markdown, "[introduction]("+srv.URL+"/docs/intro)")
	for _, p := range res.pages {
		require.NotContains(t, p.Markdown, "Copyright", "footer kept in %s", p.URL)
		require.NotContains(t, p.Markdown, "[Blog]", "navigation kept in %s", p.URL)
	}
	require.Equal(t, "First post", res.page(t, srv.URL+"/blog/first").Title)
	require.Contains(t, res.page(t, srv.URL+"/blog/first").Markdown, "Hello, world.")

	// Every page was asked for once, robots.txt once, nothing else.
	reqs := srv.requests()
	require.Equal(t, "/robots.txt", reqs[0])
	require.Len(t, reqs, 12)
	for _, p := range siteOrder {
		require.Equal(t, 1, srv.count(p.path), p.path)
	}
}

func TestCrawlMaxDepth(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	c := newCrawler(t, testConfig())
	for _, depth := range []int{1, 2} {
		res := runCrawl(t, c, srv.URL+"/", crawl.Options{MaxDepth: depth})
		require.NoError(t, res.err)
		var want []string
		for _, p := range siteOrder {
			if p.depth <= depth {
				want = append(want, p.path)
			}
		}
		require.Equal(t, want, res.paths(t, srv.URL), "depth %d", depth)
		require.Equal(t, len(want), res.progress.Discovered, "links beyond MaxDepth are not queued")
	}
}

func TestCrawlLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	for _, concurrency := range []int{1, 4} {
		cfg := testConfig()
		cfg.Concurrency = concurrency
		res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{Limit: 3})
		require.NoError(t, res.err)
		require.Equal(t, []string{"/", "/about", "/docs/"}, res.paths(t, srv.URL), "concurrency %d", concurrency)
		require.Equal(t, 3, res.progress.Fetched)
	}
}

func TestCrawlConcurrencyKeepsBreadthFirstOrder(t *testing.T) {
	t.Parallel()
	routes := siteRoutes()
	// Early pages answer slowest, so with several fetches at once they finish last.
	for path, delay := range map[string]time.Duration{"/about": 30 * time.Millisecond, "/docs/": 20 * time.Millisecond} {
		h := routes[path]
		routes[path] = func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
			h(w, r)
		}
	}
	srv := newServer(t, routes)
	cfg := testConfig()
	cfg.Concurrency = 4
	res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	var want []string
	for _, p := range siteOrder {
		want = append(want, p.path)
	}
	require.Equal(t, want, res.paths(t, srv.URL))
}

func TestCrawlIncludeExcludePaths(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	c := newCrawler(t, testConfig())

	// The start page does not match but is fetched for its links; only /docs pages are saved,
	// and nothing else is requested.
	res := runCrawl(t, c, srv.URL+"/", crawl.Options{IncludePaths: []string{`^/docs/`}, ExcludePaths: []string{`advanced$`}})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/docs/", "/docs/intro", "/docs/guide"}, res.paths(t, srv.URL))
	require.Equal(t, crawl.Progress{Discovered: 4, Fetched: 3, Skipped: 1}, res.progress)
	for _, p := range []string{"/about", "/blog/", "/contact", "/docs/advanced"} {
		require.Zero(t, srv.count(p), p)
	}

	res = runCrawl(t, c, srv.URL+"/", crawl.Options{ExcludePaths: []string{`^/blog/`, `^/about`}})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/docs/", "/docs/intro", "/contact", "/docs/guide", "/docs/advanced"}, res.paths(t, srv.URL))

	// Exclude wins over include, also for the start page.
	res = runCrawl(t, c, srv.URL+"/docs/", crawl.Options{IncludePaths: []string{`^/docs/`}, ExcludePaths: []string{`^/docs/$`}})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/docs/intro", "/docs/guide", "/docs/advanced"}, res.paths(t, srv.URL))

	_, err := c.Crawl(t.Context(), srv.URL, crawl.Options{IncludePaths: []string{`(`}}, func(crawl.Page) error { return nil }, nil)
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	require.ErrorContains(t, err, "include_paths")
}

func TestCrawlQueryParameters(t *testing.T) {
	t.Parallel()
	list := func(n string) http.HandlerFunc {
		return htmlPage(`<html><head><title>List ` + n + `</title></head><body><main><p>Items of page ` + n + `.</p>
<a href="/list?page=1">1</a> <a href="/list?page=2">2</a> <a href="/list?page=3#top">3</a></main></body></html>`)
	}
	srv := newServer(t, map[string]http.HandlerFunc{
		"/list?page=1": list("1"), "/list?page=2": list("2"), "/list?page=3": list("3"), "/list": list("none"),
	})
	c := newCrawler(t, testConfig())

	res := runCrawl(t, c, srv.URL+"/list?page=1", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/list?page=1", "/list?page=2", "/list?page=3"}, res.paths(t, srv.URL))

	res = runCrawl(t, c, srv.URL+"/list?page=1", crawl.Options{IgnoreQueryParameters: true})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/list"}, res.paths(t, srv.URL))
	require.Equal(t, "List none", res.pages[0].Title, "the query is dropped before fetching")
}

func TestCrawlContentTypes(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]http.HandlerFunc{
		"/": htmlPage(`<html><head><title>Files</title></head><body><main><p>Files.</p>
<a href="/notes">notes</a> <a href="/readme">readme</a> <a href="/report">report</a> <a href="/picture">picture</a>
<a href="/logo.png">logo</a> <a href="/empty">empty</a> <a href="/latin1">latin1</a> <a href="/nofollow" rel="external nofollow">x</a>
<a href="mailto:a@example.com">mail</a> <a href="javascript:void(0)">js</a></main></body></html>`),
		"/notes":    typed("text/plain; charset=utf-8", "Plain notes.\nSecond line, invalid byte: \xff.\n"),
		"/readme":   typed("text/markdown", "# Read me\n\nSome *markdown*.\n"),
		"/report":   typed("application/pdf", "%PDF-1.4 not really"),
		"/picture":  typed("image/png", "\x89PNG\r\n\x1a\n"),
		"/logo.png": typed("image/png", "\x89PNG\r\n\x1a\n"),
		"/empty":    htmlPage(`<html><body><nav><a href="/">home</a></nav></body></html>`),
		"/latin1":   typed("text/html; charset=iso-8859-1", "<html><head><title>Caf\xe9</title></head><body><p>Cr\xe8me br\xfbl\xe9e.</p></body></html>"),
		"/nofollow": htmlPage(`<p>never asked for</p>`),
	})
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/notes", "/readme", "/latin1"}, res.paths(t, srv.URL))
	require.Equal(t, crawl.Progress{Discovered: 7, Fetched: 4, Skipped: 3}, res.progress)

	notes := res.page(t, srv.URL+"/notes")
	require.Equal(t, "Plain notes.\nSecond line, invalid byte: \uFFFD.", notes.Markdown)
	readme := res.page(t, srv.URL+"/readme")
	require.Equal(t, "Read me", readme.Title)
	require.Equal(t, "# Read me\n\nSome *markdown*.", readme.Markdown)
	latin := res.page(t, srv.URL+"/latin1")
	require.Equal(t, "Café", latin.Title)
	require.Contains(t, latin.Markdown, "Crème brûlée.")

	require.Zero(t, srv.count("/logo.png"), "binary extensions are not fetched")
	require.Zero(t, srv.count("/nofollow"), "rel=nofollow is honoured")
}

func TestCrawlRedirects(t *testing.T) {
	t.Parallel()
	other := newServer(t, map[string]http.HandlerFunc{"/": htmlPage(`<p>elsewhere</p>`)})
	page := func(title string) http.HandlerFunc {
		return htmlPage(`<html><head><title>` + title + `</title></head><body><p>` + title + ` text.</p></body></html>`)
	}
	srv := newServer(t, map[string]http.HandlerFunc{
		"/": htmlPage(`<html><head><title>Start</title></head><body><p>Start.</p>
<a href="/loop-a">loop</a> <a href="/r/5">chain</a> <a href="/away">away</a> <a href="/old">old</a>
<a href="/new">new</a> <a href="/fine">fine</a> <a href="/gone">gone</a></body></html>`),
		"/loop-a": redirect("/loop-b"),
		"/loop-b": redirect("/loop-a"),
		"/r/5":    redirect("/r/4"),
		"/r/4":    redirect("/r/3"),
		"/r/3":    redirect("/r/2"),
		"/r/2":    redirect("/r/1"),
		"/r/1":    page("End of chain"),
		"/away":   redirect(other.URL + "/"),
		"/old":    redirect("/new"),
		"/new":    page("New"),
		"/fine":   page("Fine"),
	})
	cfg, log := recording(testConfig())
	cfg.MaxRedirects = 3
	res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{})
	require.Contains(t, log.String(), "redirect loop at "+srv.URL+"/loop-a")
	require.Contains(t, log.String(), "more than 3 redirects from "+srv.URL+"/r/5")
	require.Contains(t, log.String(), "redirect to "+other.URL+"/, off the crawl's hosts, not followed")
	require.NoError(t, res.err)
	// /old and /new are one page, saved once, under its final URL; /new's own fetch is the
	// duplicate.
	require.Equal(t, []string{"/", "/new", "/fine"}, res.paths(t, srv.URL))
	require.Equal(t, crawl.Progress{Discovered: 8, Fetched: 3, Failed: 3, Skipped: 2}, res.progress)
	require.Zero(t, len(other.requests()), "redirects to another host are not followed")
	require.Equal(t, 1, srv.count("/loop-a"))
	require.Equal(t, 1, srv.count("/loop-b"))
	require.Equal(t, 1, srv.count("/r/2"), "three redirects are followed")
	require.Zero(t, srv.count("/r/1"), "the fourth is not")
}

func TestCrawlStartRedirectAddsHost(t *testing.T) {
	t.Parallel()
	target := newServer(t, map[string]http.HandlerFunc{
		"/home":  htmlPage(`<html><head><title>Home</title></head><body><p>Home.</p><a href="/page">page</a></body></html>`),
		"/page":  htmlPage(`<html><head><title>Page</title></head><body><p>Page.</p></body></html>`),
		"/other": htmlPage(`<p>x</p>`),
	})
	start := newServer(t, map[string]http.HandlerFunc{"/": redirect(target.URL + "/home")})
	res := runCrawl(t, newCrawler(t, testConfig()), start.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/home", "/page"}, res.paths(t, target.URL))
}

func TestCrawlSizeCaps(t *testing.T) {
	t.Parallel()
	const streamed = 50 << 20
	var written atomic.Int64
	streamDone := make(chan struct{})
	// 100 gzip members of 1 MiB of zeros each: 100 MiB once decompressed, a few KiB sent.
	bomb := bytes.Repeat(gzipOf(t, make([]byte, 1<<20)), 100)
	small := gzipOf(t, []byte(`<html><head><title>Zipped</title></head><body><p>Compressed page.</p></body></html>`))
	srv := newServer(t, map[string]http.HandlerFunc{
		"/": htmlPage(`<html><head><title>Big</title></head><body><p>Big things.</p>
<a href="/stream">stream</a> <a href="/declared">declared</a> <a href="/bomb">bomb</a> <a href="/zipped">zipped</a></body></html>`),
		"/stream": func(w http.ResponseWriter, _ *http.Request) {
			defer close(streamDone)
			w.Header().Set("Content-Type", "text/html")
			chunk := bytes.Repeat([]byte("<p>filler</p>\n"), 4096)
			for written.Load() < streamed {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		},
		"/declared": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", fmt.Sprint(streamed))
			_, _ = w.Write([]byte("<p>short</p>")) // the crawler must not even wait for the rest
		},
		"/bomb":   gzipped(bomb),
		"/zipped": gzipped(small),
	})
	cfg, log := recording(testConfig())
	cfg.MaxPageBytes = 256 << 10
	res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/zipped"}, res.paths(t, srv.URL))
	require.Contains(t, log.String(), "/stream is larger than the 262144 bytes allowed")
	require.Contains(t, log.String(), "/bomb is larger than the 262144 bytes allowed")
	require.Contains(t, log.String(), "/declared is 52428800 bytes, more than the 262144 allowed")
	require.Equal(t, "Compressed page.", res.page(t, srv.URL+"/zipped").Markdown)
	require.Equal(t, crawl.Progress{Discovered: 5, Fetched: 2, Failed: 3}, res.progress)

	select {
	case <-streamDone:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the streaming handler never saw the crawler go away")
	}
	require.Less(t, written.Load(), int64(streamed/2), "the crawler read far less than the server had to send")
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func gzipped(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(body)
	}
}

func TestCrawlTimeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]http.HandlerFunc{
		"/":     htmlPage(`<html><body><p>Start.</p><a href="/hang">hang</a> <a href="/fine">fine</a></body></html>`),
		"/hang": func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"/fine": htmlPage(`<html><body><p>Fine.</p></body></html>`),
	})
	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	res := runCrawl(t, newCrawler(t, cfg), srv.URL+"/", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/fine"}, res.paths(t, srv.URL))
	require.Equal(t, 1, res.progress.Failed)
}

func TestCrawlCancel(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	var once sync.Once
	srv := newServer(t, map[string]http.HandlerFunc{
		"/": htmlPage(`<html><body><p>Start.</p><a href="/hang">hang</a></body></html>`),
		"/hang": func(_ http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(entered) })
			<-r.Context().Done()
		},
	})
	cfg := testConfig()
	cfg.Timeout = time.Minute
	c := newCrawler(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	type outcome struct {
		progress crawl.Progress
		err      error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := c.Crawl(ctx, srv.URL+"/", crawl.Options{}, func(crawl.Page) error { return nil }, nil)
		done <- outcome{p, err}
	}()
	<-entered
	cancel()
	select {
	case o := <-done:
		require.ErrorIs(t, o.err, context.Canceled)
		require.Equal(t, 1, o.progress.Fetched)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Crawl did not stop after cancel")
	}
}

func TestCrawlOnPageError(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	errStop := errors.New("disk full")
	var saved []string
	cfg := testConfig()
	cfg.Concurrency = 4
	progress, err := newCrawler(t, cfg).Crawl(t.Context(), srv.URL+"/", crawl.Options{}, func(p crawl.Page) error {
		if len(saved) == 2 {
			return errStop
		}
		saved = append(saved, p.URL)
		return nil
	}, nil)
	require.ErrorIs(t, err, errStop)
	require.Equal(t, 2, progress.Fetched)
	require.Equal(t, []string{srv.URL + "/", srv.URL + "/about"}, saved)
}

func TestCrawlStartFailures(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]http.HandlerFunc{
		"/busy": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		},
		"/pdf": typed("application/pdf", "%PDF"),
	})
	c := newCrawler(t, testConfig())

	res := runCrawl(t, c, srv.URL+"/missing", crawl.Options{})
	require.ErrorContains(t, res.err, "HTTP 404")
	transient, _ := errs.IsTransient(res.err)
	require.False(t, transient)
	require.Equal(t, crawl.Progress{Discovered: 1, Failed: 1}, res.progress)

	res = runCrawl(t, c, srv.URL+"/busy", crawl.Options{})
	require.ErrorContains(t, res.err, "HTTP 503")
	transient, after := errs.IsTransient(res.err)
	require.True(t, transient)
	require.Equal(t, 7*time.Second, after)

	// A start page that is not text ends the crawl with nothing saved, not with an error.
	res = runCrawl(t, c, srv.URL+"/pdf", crawl.Options{})
	require.NoError(t, res.err)
	require.Equal(t, crawl.Progress{Discovered: 1, Skipped: 1}, res.progress)

	for _, bad := range []string{"ftp://example.com/", "not a url", "http:///nohost", "/relative"} {
		_, err := c.Crawl(t.Context(), bad, crawl.Options{}, func(crawl.Page) error { return nil }, nil)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, bad)
	}
	_, err := c.Crawl(t.Context(), srv.URL, crawl.Options{Limit: -1}, func(crawl.Page) error { return nil }, nil)
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
}

func TestCrawlProgressIsReported(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	res := runCrawl(t, newCrawler(t, testConfig()), srv.URL+"/", crawl.Options{Limit: 4})
	require.NoError(t, res.err)
	require.Equal(t, crawl.Progress{Discovered: 1}, res.updates[0])
	for i := 1; i < len(res.updates); i++ {
		prev, cur := res.updates[i-1], res.updates[i]
		require.GreaterOrEqual(t, cur.Discovered, prev.Discovered)
		require.GreaterOrEqual(t, cur.Fetched, prev.Fetched)
	}
	require.Equal(t, res.progress, res.updates[len(res.updates)-1])
	require.Equal(t, 4, res.progress.Fetched)
	require.True(t, strings.HasSuffix(res.pages[3].URL, "/blog/"))
}

package builtin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html/charset"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/htmlmd"
)

var _ crawl.Crawler = (*Crawler)(nil)

// pageAccept is the Accept header of page requests.
const pageAccept = "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8,*/*;q=0.1"

// job is one URL to fetch.
type job struct {
	seq   int // dispatch order; results are taken in this order
	url   *url.URL
	key   string // url.String(), the dedup key
	depth int
	start bool
}

// result is what a fetch of one job gave.
type result struct {
	job   job
	final *url.URL    // normalised URL after redirects; nil when err is set
	page  *crawl.Page // nil when the page is not saved (err or notSaved says why)
	links []*url.URL  // links to queue: in scope, filtered, normalised
	err   *pageError  // the URL failed or was skipped; nothing else is set
	// notSaved says why a fetched page (whose links still count) is not saved.
	notSaved string
}

// run is the state of one Crawl shared by its fetches. The coordinator's own state (queue,
// seen sets, progress) lives in Crawl's loop.
type run struct {
	c      *Crawler
	cfg    Config
	opts   crawl.Options
	filter pathFilter
	client *http.Client
	hosts  *hosts

	mu    sync.RWMutex
	scope scope // grows once, when the start page's final host is known
}

// Crawl fetches startURL and follows links breadth-first; see the package documentation for
// what is followed, saved, skipped and refused. onPage is called for each saved page in the
// caller's goroutine, in breadth-first order; an error from it stops the crawl and is
// returned as is. onProgress (may be nil) is called after every change of the counts. Crawl
// returns the final progress, with an error when ctx ends (context.Cause), when the start
// URL is unusable or refused, or when the start page fails. Reaching Limit is not an error.
func (c *Crawler) Crawl(ctx context.Context, startURL string, opts crawl.Options, onPage func(crawl.Page) error, onProgress func(crawl.Progress)) (crawl.Progress, error) {
	var progress crawl.Progress
	opts = opts.WithDefaults()
	switch {
	case opts.Limit < 0:
		return progress, errs.InvalidArgument("limit", "must not be negative, got %d", opts.Limit)
	case opts.MaxDepth < 0:
		return progress, errs.InvalidArgument("max_depth", "must not be negative, got %d", opts.MaxDepth)
	case onPage == nil:
		return progress, errors.New("crawl: onPage is nil")
	}
	filter, err := compilePathFilter(opts.IncludePaths, opts.ExcludePaths)
	if err != nil {
		return progress, err
	}
	start, err := normalizeURL(nil, startURL, opts.IgnoreQueryParameters)
	if err != nil {
		return progress, errs.InvalidArgument("url", "%q: %v", startURL, err)
	}
	// Fail fast, before anything is sent. The dialer checks again at every connect.
	if _, err := c.guard.resolve(ctx, start.Hostname()); err != nil {
		return progress, startFailure(start, networkFailure(err))
	}

	transport := &http.Transport{
		Proxy:                  nil, // a proxy would hide the real destination from the guard
		DialContext:            c.guard.dialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    c.cfg.Concurrency,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer transport.CloseIdleConnections()
	r := &run{
		c:      c,
		cfg:    c.cfg,
		opts:   opts,
		filter: filter,
		client: &http.Client{
			Transport: transport,
			// fetch follows redirects itself, checking each hop.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hosts: newHosts(c.cfg.PerHostDelay),
		scope: scope{hosts: []string{start.Host}, subdomains: opts.AllowSubdomains},
	}
	return r.loop(ctx, start, onPage, onProgress)
}

// startFailure is the crawl's error when the start page fails.
func startFailure(start *url.URL, pe *pageError) error {
	err := fmt.Errorf("crawl: start url %s: %w", start, pe.err)
	if pe.transient {
		return errs.Transient(err, pe.retryAfter)
	}
	return err
}

// maxDiscovered caps the URLs one crawl queues, so a site of endless links (calendars,
// faceted search) cannot grow the queue without bound.
func maxDiscovered(limit int) int { return 10*limit + 100 }

// loop is the coordinator: it hands queued jobs to fetch goroutines (at most Concurrency at
// once, and no more than the pages still wanted), takes their results in dispatch order and
// queues the links found.
func (r *run) loop(parent context.Context, start *url.URL, onPage func(crawl.Page) error, onProgress func(crawl.Progress)) (progress crawl.Progress, err error) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (defers run last-first): no fetch outlives Crawl
	defer cancel()

	results := make(chan result, r.cfg.Concurrency)
	var (
		queue     []job
		head      int
		seen      = map[string]bool{} // queued or reached by a redirect
		done      = map[string]bool{} // final URLs of pages taken
		pending   = map[int]result{}  // results that arrived before an earlier one
		nextSeq   int
		nextTake  int
		inFlight  int // dispatched, result not yet taken
		maxQueued = maxDiscovered(r.opts.Limit)
		report    = func() {
			if onProgress != nil {
				onProgress(progress)
			}
		}
	)
	enqueue := func(u *url.URL, depth int, isStart bool) {
		k := u.String()
		if seen[k] || progress.Discovered >= maxQueued {
			return
		}
		seen[k] = true
		queue = append(queue, job{url: u, key: k, depth: depth, start: isStart})
		progress.Discovered++
	}
	enqueue(start, 0, true)
	report()

	for {
		for inFlight < min(r.cfg.Concurrency, r.opts.Limit-progress.Fetched) && head < len(queue) {
			j := queue[head]
			queue[head] = job{}
			head++
			if head > 1024 && head*2 > len(queue) {
				queue = append([]job(nil), queue[head:]...)
				head = 0
			}
			j.seq = nextSeq
			nextSeq++
			inFlight++
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- r.process(ctx, j)
			}()
		}
		if inFlight == 0 {
			return progress, nil
		}

		select {
		case <-parent.Done():
			return progress, context.Cause(parent)
		case res := <-results:
			pending[res.job.seq] = res
		}
		for {
			res, ok := pending[nextTake]
			if !ok {
				break
			}
			delete(pending, nextTake)
			nextTake++
			inFlight--
			if parent.Err() != nil {
				return progress, context.Cause(parent)
			}

			if res.err != nil {
				if res.job.start && (res.err.outcome == outcomeFailed || res.err.failsStart) {
					progress.Failed++
					report()
					return progress, startFailure(res.job.url, res.err)
				}
				r.count(&progress, res.job.url, res.err)
				report()
				continue
			}
			fk := res.final.String()
			if done[fk] {
				r.count(&progress, res.job.url, skippedf("%s is %s, already taken", res.job.url, fk))
				report()
				continue
			}
			done[fk] = true
			seen[fk] = true
			if res.page != nil {
				if err := onPage(*res.page); err != nil {
					return progress, err
				}
				progress.Fetched++
			} else {
				r.count(&progress, res.final, skippedf("%s", res.notSaved))
			}
			if r.opts.MaxDepth == 0 || res.job.depth < r.opts.MaxDepth {
				for _, l := range res.links {
					enqueue(l, res.job.depth+1, false)
				}
			}
			report()
			if progress.Fetched >= r.opts.Limit {
				return progress, nil
			}
		}
	}
}

// count records a URL that was not saved.
func (r *run) count(progress *crawl.Progress, u *url.URL, pe *pageError) {
	if pe.outcome == outcomeFailed {
		progress.Failed++
		r.cfg.Logger.Info("crawl: page failed", "url", u.String(), "error", pe.err)
		return
	}
	progress.Skipped++
	r.cfg.Logger.Debug("crawl: page skipped", "url", u.String(), "reason", pe.err)
}

// savedTypes are the media types whose pages are saved.
func savedType(mediaType string) bool {
	switch mediaType {
	case "text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-markdown":
		return true
	}
	return false
}

// process fetches one job and turns the response into a result. It runs in its own
// goroutine.
func (r *run) process(ctx context.Context, j job) result {
	res := result{job: j}
	f, pe := r.fetch(ctx, j.url, fetchPolicy{
		maxBytes: r.cfg.MaxPageBytes,
		accept:   pageAccept,
		// An absent type is sniffed from the body.
		wantType: func(mt string) bool { return mt == "" || savedType(mt) },
		beforeRequest: func(ctx context.Context, u *url.URL, redirect bool) *pageError {
			return r.check(ctx, u, redirect && !j.start)
		},
	})
	if pe != nil {
		res.err = pe
		return res
	}
	if f.status < 200 || f.status > 299 {
		res.err = statusFailure(f)
		return res
	}
	mediaType := f.mediaType
	if mediaType == "" && f.body != nil {
		mediaType, _, _ = strings.Cut(http.DetectContentType(f.body), ";")
	}
	if !savedType(mediaType) {
		res.err = skippedf("%s is %s, not text", f.url, cmp.Or(mediaType, "of no content type"))
		return res
	}
	final, err := normalizeURL(nil, f.url.String(), r.opts.IgnoreQueryParameters)
	if err != nil { // cannot happen: f.url was normalised already
		res.err = failed(err)
		return res
	}
	res.final = final
	if j.start && final.Host != j.url.Host {
		r.mu.Lock()
		r.scope.add(final.Host)
		r.mu.Unlock()
	}

	text := decode(f.body, f.header.Get("Content-Type"))
	page := crawl.Page{URL: final.String(), Depth: j.depth}
	switch mediaType {
	case "text/html", "application/xhtml+xml":
		conv, err := htmlmd.Convert(text, htmlmd.Options{BaseURL: final.String()})
		if err != nil {
			res.err = failed(fmt.Errorf("%s: %w", final, err))
			return res
		}
		page.Title, page.Markdown = conv.Title, conv.Markdown
		res.links = r.followable(extractLinks(text, f.url, r.opts.IgnoreQueryParameters))
	case "text/markdown", "text/x-markdown":
		page.Markdown = strings.TrimSpace(text)
		page.Title = markdownTitle(page.Markdown)
	default:
		page.Markdown = strings.TrimSpace(text)
	}

	switch {
	case !r.filter.allows(final.EscapedPath()):
		res.notSaved = fmt.Sprintf("%s does not match the path filters", final)
	case page.Markdown == "":
		res.notSaved = fmt.Sprintf("%s has no text", final)
	default:
		res.page = &page
	}
	return res
}

// check runs before every request of a page: a redirect must stay on the crawl's hosts
// (offHostCheck), and robots.txt must allow the URL.
func (r *run) check(ctx context.Context, u *url.URL, offHostCheck bool) *pageError {
	if offHostCheck && !r.inScope(u) {
		return skippedf("redirect to %s, off the crawl's hosts, not followed", u)
	}
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	rules, err := r.hosts.robotsFor(ctx, origin.String(), func() *robotsRules {
		rules := r.fetchRobots(ctx, origin)
		if rules.crawlDelay > 0 {
			r.hosts.raiseDelay(u.Host, rules.crawlDelay)
		}
		return rules
	})
	switch {
	case err != nil:
		return failed(err)
	case rules.unavailable && errors.Is(rules.err, ErrBlockedAddress):
		return failed(rules.err)
	case rules.unavailable:
		return &pageError{outcome: outcomeSkipped, err: fmt.Errorf("%s not fetched: %w", u, rules.err), transient: rules.transient, failsStart: true}
	case !rules.allowed(u):
		pe := skippedf("%s is disallowed by robots.txt", u)
		pe.failsStart = true
		return pe
	}
	return nil
}

func (r *run) inScope(u *url.URL) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.scope.contains(u.Host)
}

// followable keeps the links worth queueing: on the crawl's hosts, not binary files, and
// allowed by the path filters.
func (r *run) followable(links []*url.URL) []*url.URL {
	keep := links[:0]
	for _, l := range links {
		p := l.EscapedPath()
		if r.inScope(l) && !hasBinaryExtension(p) && r.filter.allows(p) {
			keep = append(keep, l)
		}
	}
	return keep
}

// decode turns a body into valid UTF-8, using the charset of the Content-Type header, of a
// <meta> tag, or guessed, and replacing whatever is still invalid.
func decode(body []byte, contentType string) string {
	if enc, name, _ := charset.DetermineEncoding(body, contentType); name != "utf-8" && enc != nil {
		if b, err := enc.NewDecoder().Bytes(body); err == nil {
			body = b
		}
	}
	if utf8.Valid(body) {
		return string(body)
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// markdownTitle is the text of a Markdown document's first ATX heading of level 1, or "".
func markdownTitle(md string) string {
	for line := range strings.Lines(md) {
		if t, ok := strings.CutPrefix(line, "# "); ok {
			return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(t), "#"))
		}
	}
	return ""
}

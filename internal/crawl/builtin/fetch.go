package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// outcome is what became of one URL.
type outcome int

const (
	outcomeFailed  outcome = iota + 1 // an error: counted in Progress.Failed
	outcomeSkipped                    // deliberately not saved: counted in Progress.Skipped
)

// pageError is why a URL was not saved.
type pageError struct {
	outcome    outcome
	err        error
	transient  bool          // retrying later may work (network trouble, 429, 5xx)
	retryAfter time.Duration // the server's Retry-After, if any
	// failsStart makes a skip of the start URL fail the crawl (robots.txt forbids it):
	// other skips of it (a content type that is not text) just end a crawl with no pages.
	failsStart bool
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

func failed(err error) *pageError { return &pageError{outcome: outcomeFailed, err: err} }

func failedf(format string, args ...any) *pageError { return failed(fmt.Errorf(format, args...)) }

func skippedf(format string, args ...any) *pageError {
	return &pageError{outcome: outcomeSkipped, err: fmt.Errorf(format, args...)}
}

// networkFailure classifies an error of the client or of reading a body. Refused addresses
// are permanent; everything else on the network may heal.
func networkFailure(err error) *pageError {
	if errors.Is(err, ErrBlockedAddress) {
		return failed(err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return failed(err)
	}
	return &pageError{outcome: outcomeFailed, err: err, transient: true}
}

// fetchPolicy says how fetch treats one kind of resource.
type fetchPolicy struct {
	maxBytes int64
	// truncate reads the first maxBytes of a larger body instead of failing.
	truncate bool
	accept   string
	// wantType reports whether a 2xx body of this media type ("" when the server sent none)
	// should be read; nil reads every body.
	wantType func(mediaType string) bool
	// beforeRequest runs before every request, the first and each redirect's; an error stops
	// the fetch with it. It does the checks that depend on the URL: scope, robots.txt.
	beforeRequest func(ctx context.Context, u *url.URL, redirect bool) *pageError
}

// fetched is a response read into memory.
type fetched struct {
	url       *url.URL // after redirects
	status    int
	header    http.Header
	mediaType string // from Content-Type, lower case; "" when absent or unparsable
	body      []byte // nil for non-2xx responses and unwanted types
}

// fetch GETs u, following up to MaxRedirects redirects itself so that every hop goes through
// beforeRequest and the politeness delay. A non-2xx status is not an error here.
func (r *run) fetch(ctx context.Context, u *url.URL, pol fetchPolicy) (*fetched, *pageError) {
	first := u
	chain := map[string]bool{u.String(): true}
	for hops := 0; ; hops++ {
		if pol.beforeRequest != nil {
			if pe := pol.beforeRequest(ctx, u, hops > 0); pe != nil {
				return nil, pe
			}
		}
		if err := r.hosts.wait(ctx, u.Host); err != nil {
			return nil, failed(err)
		}
		f, location, pe := r.once(ctx, u, pol)
		if pe != nil {
			return nil, pe
		}
		if location == "" {
			return f, nil
		}
		next, err := normalizeURL(u, location, false)
		if err != nil {
			return nil, failedf("redirect from %s to %q: %v", u, location, err)
		}
		if hops+1 > r.cfg.MaxRedirects {
			return nil, failedf("more than %d redirects from %s", r.cfg.MaxRedirects, first)
		}
		if chain[next.String()] {
			return nil, failedf("redirect loop at %s", next)
		}
		chain[next.String()] = true
		u = next
	}
}

// once makes one request. For a redirect with a Location it returns that location and no
// response.
func (r *run) once(ctx context.Context, u *url.URL, pol fetchPolicy) (*fetched, string, *pageError) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", failed(err)
	}
	req.Header.Set("User-Agent", r.cfg.UserAgent)
	if pol.accept != "" {
		req.Header.Set("Accept", pol.accept)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, "", networkFailure(err)
	}
	// Closing without draining drops the connection: cheaper than reading a body we refuse.
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			return nil, loc, nil
		}
	}
	f := &fetched{url: u, status: resp.StatusCode, header: resp.Header}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		f.mediaType = mt
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return f, "", nil
	}
	if pol.wantType != nil && !pol.wantType(f.mediaType) {
		return f, "", nil
	}
	if resp.ContentLength > pol.maxBytes && !pol.truncate {
		return nil, "", failedf("%s is %d bytes, more than the %d allowed", u, resp.ContentLength, pol.maxBytes)
	}
	// The limit applies to the decompressed stream (the transport decompresses gzip), so a
	// small compressed body cannot expand past it.
	body, err := io.ReadAll(io.LimitReader(resp.Body, pol.maxBytes+1))
	if err != nil {
		return nil, "", networkFailure(fmt.Errorf("reading %s: %w", u, err))
	}
	if int64(len(body)) > pol.maxBytes {
		if !pol.truncate {
			return nil, "", failedf("%s is larger than the %d bytes allowed", u, pol.maxBytes)
		}
		body = body[:pol.maxBytes]
	}
	f.body = body
	return f, "", nil
}

// statusFailure is the error for a page that answered with a non-2xx status.
func statusFailure(f *fetched) *pageError {
	pe := failedf("%s: HTTP %d", f.url, f.status)
	if f.status == http.StatusTooManyRequests || f.status >= 500 {
		pe.transient = true
		pe.retryAfter = retryAfter(f.header.Get("Retry-After"))
	}
	return pe
}

// retryAfter parses a Retry-After header in seconds or as a date; 0 when absent or bad.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// robots fetches and parses origin's robots.txt (origin is scheme://host[:port]).
func (r *run) fetchRobots(ctx context.Context, origin *url.URL) *robotsRules {
	u := &url.URL{Scheme: origin.Scheme, Host: origin.Host, Path: "/robots.txt"}
	f, pe := r.fetch(ctx, u, fetchPolicy{
		maxBytes: maxRobotsBytes,
		truncate: true,
		accept:   "text/plain, */*;q=0.1",
	})
	switch {
	case pe != nil:
		return unavailableRobots(fmt.Errorf("robots.txt of %s: %w", u.Host, pe), pe.transient)
	case f.status >= 200 && f.status <= 299:
		return parseRobots(string(f.body), r.c.product)
	case f.status == http.StatusTooManyRequests || f.status >= 500:
		return unavailableRobots(fmt.Errorf("robots.txt of %s answered HTTP %d", u.Host, f.status), true)
	case f.status >= 400:
		return allowAll
	default:
		// 1xx, 3xx without Location and the like: nothing usable, so no rules.
		return allowAll
	}
}

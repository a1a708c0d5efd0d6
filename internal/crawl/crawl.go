// Package crawl holds what every crawler shares: the options of a crawl, the pages it yields and
// the progress it reports, and the Crawler interface the job code drives. The built-in crawler
// (package builtin) and the Firecrawl client both speak these types, so the code that stores
// pages does not know which one ran.
//
// It knows nothing about fetching, storage, jobs or the API: callers map content.CrawlOptions
// onto Options at their edge.
package crawl

import "context"

// DefaultLimit is Options.Limit when zero.
const DefaultLimit = 1000

// Options tune one crawl. The zero value crawls up to DefaultLimit pages of the start host at
// any depth.
type Options struct {
	// Limit is the most pages the crawl saves. Defaults to DefaultLimit.
	Limit int
	// MaxDepth is how many links deep the crawl follows from the start URL (the start URL is
	// depth 0); 0 means no depth limit.
	MaxDepth int
	// IncludePaths are regular expressions (Go syntax) over URL paths; when any are given,
	// only pages whose path matches one of them are saved. The start URL is fetched (for its
	// links) whether it matches or not.
	IncludePaths []string
	// ExcludePaths are regular expressions over URL paths; matching pages are not saved, and
	// links to them are not followed. Exclude wins over include.
	ExcludePaths []string
	// AllowSubdomains lets the crawl follow links to subdomains of the start host.
	AllowSubdomains bool
	// IgnoreQueryParameters drops the query from every URL, so URLs that differ only in
	// their query are one page.
	IgnoreQueryParameters bool
}

// WithDefaults returns o with every unset field at its documented default.
func (o Options) WithDefaults() Options {
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	return o
}

// Page is one saved page.
type Page struct {
	// URL is the page's final URL after redirects, normalised (no fragment, lower-case scheme
	// and host, no default port, no query when IgnoreQueryParameters).
	URL string
	// Title is the page's title; may be empty.
	Title string
	// Markdown is the page's main content as Markdown (plain text pages as they are).
	Markdown string
	// Depth is how many links away from the start URL the page was found.
	Depth int
}

// Progress counts a crawl's pages so far.
type Progress struct {
	// Discovered is how many distinct URLs were queued, the start URL included.
	Discovered int
	// Fetched is how many pages were saved (handed to the caller).
	Fetched int
	// Failed is how many pages could not be fetched: network errors, error statuses, redirect
	// loops, refused addresses, pages over the size cap.
	Failed int
	// Skipped is how many URLs were dealt with but deliberately not saved: disallowed by
	// robots.txt, a content type that is not text, a redirect off the crawl's hosts or onto a
	// page already seen, a page outside IncludePaths, a page with no text.
	Skipped int
}

// Crawler crawls a site. onPage is called for each saved page, one at a time, in the caller's
// goroutine; an error from it stops the crawl, and Crawl returns that error. onProgress (may
// be nil) is called after every change of the counts. Crawl returns the final progress, also
// when it fails.
type Crawler interface {
	Crawl(ctx context.Context, startURL string, opts Options, onPage func(Page) error, onProgress func(Progress)) (Progress, error)
}

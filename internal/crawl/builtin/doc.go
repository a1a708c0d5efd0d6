// Package builtin is the crawler that runs inside the server process: it fetches a start URL,
// follows links breadth-first within the start host and hands each page, as Markdown, to its
// caller. It owns fetching, politeness, robots.txt and the guard that keeps crawls off internal
// networks; it knows nothing about jobs, storage or the API (those see only package crawl).
//
// # What is crawled
//
// Links are followed when they are http or https, on the start host (and its subdomains with
// AllowSubdomains; a different port is a different host), within MaxDepth, not excluded by
// ExcludePaths and, when IncludePaths are given, matching one of them. URLs whose extension
// marks them as binary (images, archives, PDFs, fonts, media, scripts, styles) are not queued at
// all. If the start URL redirects, its final host joins the crawl's hosts, so a site whose root
// redirects to www (or to https) is crawled; every other redirect off the crawl's hosts is not
// followed and the page is skipped.
//
// The start URL is always fetched and its links followed, even when it does not match
// IncludePaths; like every page, it is saved only if its (final) path matches. Path filters
// are Go regular expressions matched (unanchored) against the URL path; exclude wins.
//
// Text/html and application/xhtml+xml pages become Markdown through htmlmd (main content
// only); text/plain and text/markdown pages are saved as they are. Other content types,
// and pages with no text, are skipped. Bodies are read up to Config.MaxPageBytes after
// decompression (the rest is never read); a larger page fails. Pages in another charset are
// decoded to UTF-8 and any invalid UTF-8 left is replaced with U+FFFD.
//
// At most 10*Limit+100 URLs are queued in one crawl, so a site of endless links (calendars,
// faceted search) cannot grow the queue without bound.
//
// Pages are saved in breadth-first order whatever the concurrency: fetches run in parallel but
// their results are taken in the order they were queued. So Limit picks the first pages in
// that order, and with the same site the same pages come back in the same order.
//
// # Failures
//
// A page that fails (network error, error status, redirect loop, more than MaxRedirects
// redirects, refused address, over the size cap) is counted and logged, and the crawl goes
// on. If the start page fails, or robots.txt disallows it, the crawl fails with that error:
// there is nothing to crawl. Network errors, timeouts, 429 and 5xx are then marked transient
// (errs.Transient); the rest are permanent.
//
// # robots.txt
//
// robots.txt is fetched once per host, through the same guarded client, before the first page
// of that host. The group for our product token (the User-Agent up to the first '/') applies,
// else the '*' group. Allow and Disallow rules are matched against the path and query with
// '*' wildcards and a '$' end anchor; the longest matching rule wins and Allow wins a tie
// (RFC 9309). Crawl-delay (seconds, fractions allowed, capped at 10s) raises the per-host delay.
//
// A robots.txt answering 4xx (404, but also 401 and 403) allows everything. One answering 5xx
// or 429, or that cannot be fetched at all, disallows everything on that host for this crawl,
// as RFC 9309 and the big search engines do: an unreachable server is not consent. Redirects
// of robots.txt are followed (also across hosts, still through the guard); only the first
// 512 KiB are read.
//
// # Politeness
//
// Requests to one host start at least PerHostDelay (or the host's Crawl-delay, whichever is
// larger) apart, robots.txt included; at most Concurrency requests run at once overall.
//
// # The address guard
//
// Every connection, redirects and robots.txt included, is checked at dial time against the
// address actually being dialled: the dialer resolves the name itself, checks every address
// and connects only to one it allows, and the net.Dialer's Control function checks the
// socket's address again before connect(2). So a name that resolves to a public address when
// checked and to an internal one when used (DNS rebinding) is still refused. No proxy from the
// environment is used (it would hide the real destination).
//
// Always refused: unspecified (0.0.0.0, ::), "this network" 0/8, link-local (169.254/16,
// where cloud metadata lives, and fe80::/10), multicast, broadcast and the reserved 240/4.
// Loopback (127/8, ::1, and the name localhost) is refused unless Config.AllowLoopback;
// private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, 198.18/15, 192.0.0/24, fc00::/7,
// fec0::/10) unless Config.AllowPrivate. IPv4 addresses inside IPv6 (::ffff:a.b.c.d, NAT64
// 64:ff9b::/96, 6to4 2002::/16) are judged by their IPv4 address. The start URL's host is
// checked before anything is sent, and the crawl fails at once naming the address.
package builtin

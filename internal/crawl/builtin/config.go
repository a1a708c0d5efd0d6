package builtin

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// DefaultUserAgent is Config.UserAgent when empty.
const DefaultUserAgent = "pipeline-crawler/1 (+https://github.com/pipeline-dev/pipeline)"

// Config configures a Crawler. The zero value is usable; WithDefaults fills it in.
type Config struct {
	// UserAgent is sent with every request; its product token (up to the first '/') selects
	// the robots.txt group. Defaults to DefaultUserAgent.
	UserAgent string
	// Concurrency is how many fetches run at once, over all hosts. Defaults to 4.
	Concurrency int
	// PerHostDelay is the least time between the starts of two requests to one host; a
	// robots.txt Crawl-delay can raise it. Defaults to 250ms; NoDelay means none.
	PerHostDelay time.Duration
	// Timeout bounds one request, reading the body included. Defaults to 15s.
	Timeout time.Duration
	// MaxPageBytes caps a page's body after decompression; a larger page fails and the rest
	// of its body is never read. Defaults to 5 MiB.
	MaxPageBytes int64
	// MaxRedirects is how many redirects one page may take; more fail the page. Defaults
	// to 10; NoRedirects means none are followed.
	MaxRedirects int
	// AllowLoopback lets the crawler connect to loopback addresses (127/8, ::1), for
	// crawling a site on this machine (`pipeline dev`). Defaults to false.
	AllowLoopback bool
	// AllowPrivate lets the crawler connect to private addresses (10/8, 172.16/12,
	// 192.168/16, 100.64/10, fc00::/7 and the like). Link-local addresses (cloud metadata)
	// stay refused. Defaults to false.
	AllowPrivate bool
	// Logger receives the reason of every failed page, at Info level. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// test replaces name resolution and connecting in tests; nil in production.
	test *testNetwork
}

// NoDelay and NoRedirects set PerHostDelay and MaxRedirects to zero (their zero values mean
// "use the default").
const (
	NoDelay     time.Duration = -1
	NoRedirects int           = -1
)

// testNetwork lets tests stand a fake public host in front of an httptest server without
// weakening the guard: lookup gives the addresses of a name (the guard still judges them),
// connect replaces only the final connect to an address the guard allowed.
type testNetwork struct {
	lookup  func(ctx context.Context, host string) ([]netip.Addr, error)
	connect func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error)
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	c.UserAgent = cmp.Or(c.UserAgent, DefaultUserAgent)
	c.Concurrency = cmp.Or(c.Concurrency, 4)
	c.PerHostDelay = cmp.Or(c.PerHostDelay, 250*time.Millisecond)
	if c.PerHostDelay == NoDelay {
		c.PerHostDelay = 0
	}
	c.Timeout = cmp.Or(c.Timeout, 15*time.Second)
	c.MaxPageBytes = cmp.Or(c.MaxPageBytes, 5<<20)
	c.MaxRedirects = cmp.Or(c.MaxRedirects, 10)
	if c.MaxRedirects == NoRedirects {
		c.MaxRedirects = 0
	}
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

// Validate reports the first unusable field of c (after defaults).
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > 256:
		return errs.InvalidArgument("concurrency", "must be between 1 and 256, got %d", c.Concurrency)
	case c.PerHostDelay < 0:
		return errs.InvalidArgument("per_host_delay", "must not be negative, got %s", c.PerHostDelay)
	case c.Timeout < 0:
		return errs.InvalidArgument("timeout", "must not be negative, got %s", c.Timeout)
	case c.MaxPageBytes < 1:
		return errs.InvalidArgument("max_page_bytes", "must be positive, got %d", c.MaxPageBytes)
	case c.MaxRedirects < 0:
		return errs.InvalidArgument("max_redirects", "must not be negative, got %d", c.MaxRedirects)
	}
	return nil
}

// Crawler is the built-in crawler. It is safe for concurrent use; each Crawl has its own
// connections, robots.txt cache and politeness state.
type Crawler struct {
	cfg     Config
	product string // the User-Agent's product token, for robots.txt
	guard   *guard
}

// New returns a Crawler for cfg (zero fields take their defaults).
func New(cfg Config) (*Crawler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("crawl: %w", err)
	}
	return &Crawler{
		cfg:     cfg,
		product: productToken(cfg.UserAgent),
		guard:   newGuard(cfg.AllowLoopback, cfg.AllowPrivate, cfg.test),
	}, nil
}

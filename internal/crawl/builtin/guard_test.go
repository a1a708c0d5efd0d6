package builtin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/builtin"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

// fakeNet stands fake public host names in front of one httptest server: lookup answers
// from names, and connect reaches the server for publicAddr only, logging every address it
// was asked to connect to.
type fakeNet struct {
	target string // the httptest listener, host:port
	names  map[string][]netip.Addr

	mu       sync.Mutex
	lookups  map[string]int
	connects []netip.Addr
	rebind   map[string][]netip.Addr // answers from the second lookup of a name on
}

var publicAddr = netip.MustParseAddr("203.0.113.7")

func newFakeNet(srv *server) *fakeNet {
	return &fakeNet{target: srv.Listener.Addr().String(), names: map[string][]netip.Addr{}, lookups: map[string]int{}, rebind: map[string][]netip.Addr{}}
}

func (f *fakeNet) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[host]++
	if addrs, ok := f.rebind[host]; ok && f.lookups[host] > 1 {
		return addrs, nil
	}
	if addrs, ok := f.names[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeNet) connect(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	f.mu.Lock()
	f.connects = append(f.connects, addr.Addr())
	f.mu.Unlock()
	if addr.Addr() != publicAddr {
		return nil, errors.New("fake network: no route")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, f.target)
}

func (f *fakeNet) connected() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.connects...)
}

// guardedConfig refuses loopback and private addresses, as in production.
func guardedConfig() builtin.Config {
	cfg := testConfig()
	cfg.AllowLoopback = false
	return cfg
}

func noPages(crawl.Page) error { return nil }

func TestGuardRefusesLoopbackStart(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	c := newCrawler(t, guardedConfig())

	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	for _, start := range []string{srv.URL + "/", "http://localhost:" + port + "/", "http://LOCALHOST./", "http://app.localhost/", "http://[::1]:" + port + "/", "http://127.1.2.3/"} {
		progress, err := c.Crawl(t.Context(), start, crawl.Options{}, noPages, nil)
		require.ErrorIs(t, err, builtin.ErrBlockedAddress, start)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, start)
		require.ErrorContains(t, err, "loopback", start)
		require.Equal(t, crawl.Progress{}, progress)
	}
	require.Empty(t, srv.requests(), "nothing was sent")
}

func TestGuardRefusesWithoutTraffic(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	fn := newFakeNet(srv)
	fn.names["metadata.example"] = []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	c := newCrawler(t, builtin.WithTestNetwork(guardedConfig(), fn.lookup, fn.connect))
	for start, want := range map[string]string{
		"http://10.0.0.1/":                        "refusing to connect to 10.0.0.1: private address",
		"http://169.254.169.254/latest/":          "refusing to connect to 169.254.169.254: link-local address",
		"http://[::1]/":                           "refusing to connect to ::1: loopback address",
		"http://[::ffff:169.254.169.254]/":        "link-local address",
		"http://[fd00:ec2::254]/":                 "private address",
		"http://100.100.100.200/":                 "private address",
		"http://0.0.0.0/":                         "unspecified address",
		"http://224.0.0.1/":                       "multicast address",
		"http://255.255.255.255/":                 "broadcast address",
		"http://[fe80::1]/":                       "link-local address",
		"http://[64:ff9b::a9fe:a9fe]/":            "link-local address",
		"http://metadata.example/computeMetadata": "refusing to connect to metadata.example (169.254.169.254): link-local address",
	} {
		_, err := c.Crawl(t.Context(), start, crawl.Options{}, noPages, nil)
		require.ErrorIs(t, err, builtin.ErrBlockedAddress, start)
		require.ErrorContains(t, err, want, start)
		var be *builtin.BlockedAddressError
		require.ErrorAs(t, err, &be)
	}
	require.Empty(t, fn.connected(), "no connection was attempted")
	require.Empty(t, srv.requests())
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	strict := guardedConfig()
	loose := guardedConfig()
	loose.AllowLoopback, loose.AllowPrivate = true, true
	for addr, allowed := range map[string][2]bool{ // strict, loose
		"93.184.216.34:443":           {true, true},
		"[2606:4700::1111]:443":       {true, true},
		"127.0.0.1:80":                {false, true},
		"[::1]:80":                    {false, true},
		"10.0.0.1:80":                 {false, true},
		"172.16.5.4:80":               {false, true},
		"192.168.1.1:80":              {false, true},
		"100.64.0.1:80":               {false, true},
		"[fc00::1]:80":                {false, true},
		"[::ffff:10.0.0.1]:80":        {false, true},
		"169.254.169.254:80":          {false, false},
		"[::ffff:169.254.169.254]:80": {false, false},
		"[fe80::1%eth0]:80":           {false, false},
		"0.0.0.0:80":                  {false, false},
		"[::]:80":                     {false, false},
		"224.0.0.251:5353":            {false, false},
		"[ff02::1]:80":                {false, false},
		"255.255.255.255:80":          {false, false},
		"[2002:a9fe:a9fe::1]:80":      {false, false}, // 6to4 of 169.254.169.254
	} {
		for i, cfg := range []builtin.Config{strict, loose} {
			err := builtin.GuardControl(cfg, addr)
			if allowed[i] {
				require.NoError(t, err, "%s (config %d)", addr, i)
			} else {
				require.ErrorIs(t, err, builtin.ErrBlockedAddress, "%s (config %d)", addr, i)
			}
		}
	}
}

// TestGuardControlBeforeConnect dials a listening loopback socket with the guarded dialer
// alone: Control must refuse before connect(2), so the listener accepts nothing.
func TestGuardControlBeforeConnect(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepted atomic.Int32
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()

	_, err = builtin.DialGuarded(t.Context(), guardedConfig(), ln.Addr().String())
	require.ErrorIs(t, err, builtin.ErrBlockedAddress)
	require.ErrorContains(t, err, "loopback")

	// The same dialer with loopback allowed does connect: the listener works.
	conn, err := builtin.DialGuarded(t.Context(), testConfig(), ln.Addr().String())
	require.NoError(t, err)
	conn.Close()
	require.NoError(t, ln.Close())
	<-acceptDone
	require.EqualValues(t, 1, accepted.Load(), "only the allowed dial connected")
}

func TestGuardRedirects(t *testing.T) {
	t.Parallel()
	srv := newServer(t, map[string]http.HandlerFunc{
		"/meta": redirect("http://169.254.169.254/latest/meta-data/"),
		"/": htmlPage(`<html><body><p>Public page.</p>
<a href="/internal">internal</a> <a href="http://intranet.docs.example/">intranet</a> <a href="/ok">ok</a></body></html>`),
		"/internal": redirect("http://intranet.docs.example/admin"),
		"/ok":       htmlPage(`<html><body><p>Fine.</p></body></html>`),
	})
	fn := newFakeNet(srv)
	fn.names["docs.example"] = []netip.Addr{publicAddr}
	fn.names["intranet.docs.example"] = []netip.Addr{netip.MustParseAddr("10.1.2.3")}
	c := newCrawler(t, builtin.WithTestNetwork(guardedConfig(), fn.lookup, fn.connect))

	// The start page may redirect anywhere, but not to the metadata address.
	res := runCrawl(t, c, "http://docs.example/meta", crawl.Options{})
	require.ErrorIs(t, res.err, builtin.ErrBlockedAddress)
	require.ErrorContains(t, res.err, "169.254.169.254: link-local address")

	// A page redirecting to a subdomain that resolves to a private address, and a link to it,
	// fail; the rest of the crawl goes on.
	res = runCrawl(t, c, "http://docs.example/", crawl.Options{AllowSubdomains: true})
	require.NoError(t, res.err)
	require.Equal(t, []string{"/", "/ok"}, res.paths(t, "http://docs.example"))
	require.Equal(t, crawl.Progress{Discovered: 4, Fetched: 2, Failed: 2}, res.progress)

	for _, a := range fn.connected() {
		require.Equal(t, publicAddr, a, "only the public address was connected to")
	}
	require.Equal(t, []string{"/robots.txt", "/meta", "/robots.txt", "/", "/internal", "/ok"}, srv.requests())
}

func TestGuardDNSRebinding(t *testing.T) {
	t.Parallel()
	srv := newServer(t, siteRoutes())
	fn := newFakeNet(srv)
	fn.names["rebind.example"] = []netip.Addr{publicAddr}
	fn.rebind["rebind.example"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	c := newCrawler(t, builtin.WithTestNetwork(guardedConfig(), fn.lookup, fn.connect))

	// The pre-check sees the public address; every connect resolves again and sees loopback.
	res := runCrawl(t, c, "http://rebind.example/", crawl.Options{})
	require.ErrorIs(t, res.err, builtin.ErrBlockedAddress)
	require.ErrorContains(t, res.err, "rebind.example (127.0.0.1): loopback address")
	require.Empty(t, fn.connected())
	require.Empty(t, srv.requests())
}

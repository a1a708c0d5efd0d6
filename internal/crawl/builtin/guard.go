package builtin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// ErrBlockedAddress is what every refusal of the address guard wraps; match with errors.Is.
var ErrBlockedAddress = errors.New("address not allowed")

// BlockedAddressError says which address the guard refused, for which host, and why.
type BlockedAddressError struct {
	Host   string     // the host name or literal being connected to
	Addr   netip.Addr // the refused address; invalid when the name itself was refused
	Reason string     // "loopback", "private", "link-local", ...
}

func (e *BlockedAddressError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("refusing to connect to %s: %s name", e.Host, e.Reason)
	}
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("refusing to connect to %s: %s address", e.Addr, e.Reason)
	}
	return fmt.Sprintf("refusing to connect to %s (%s): %s address", e.Host, e.Addr, e.Reason)
}

// Unwrap makes the error match ErrBlockedAddress and errs.ErrInvalidArgument: a URL that leads
// to a refused address is the caller's to fix, and retrying it will not help.
func (e *BlockedAddressError) Unwrap() []error {
	return []error{ErrBlockedAddress, errs.ErrInvalidArgument}
}

// guard decides which addresses the crawler may connect to and makes the connections.
type guard struct {
	allowLoopback bool
	allowPrivate  bool
	test          *testNetwork
	dialer        *net.Dialer
}

func newGuard(allowLoopback, allowPrivate bool, test *testNetwork) *guard {
	g := &guard{allowLoopback: allowLoopback, allowPrivate: allowPrivate, test: test}
	g.dialer = &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.control,
	}
	return g
}

// Ranges beyond what netip's predicates know. Private ones are refused unless allowPrivate.
var (
	privatePrefixes = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT; also Alibaba's metadata
		netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
		netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
		netip.MustParsePrefix("fec0::/10"),     // deprecated site-local
	}
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	reserved    = netip.MustParsePrefix("240.0.0.0/4") // includes broadcast
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// check returns why addr is refused, or "" when it is allowed.
func (g *guard) check(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		// IPv4 addresses carried in IPv6 reach the IPv4 host; judge that one too.
		b := addr.As16()
		switch {
		case nat64.Contains(addr):
			if r := g.check(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return r
			}
		case sixToFour.Contains(addr):
			if r := g.check(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return r
			}
		}
	}
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified() || thisNetwork.Contains(addr):
		return "unspecified"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast():
		return "multicast"
	case reserved.Contains(addr):
		return "reserved or broadcast"
	case addr.IsLoopback():
		if g.allowLoopback {
			return ""
		}
		return "loopback"
	}
	if g.allowPrivate {
		return ""
	}
	if addr.IsPrivate() {
		return "private"
	}
	for _, p := range privatePrefixes {
		if p.Contains(addr) {
			return "private"
		}
	}
	return ""
}

// isLocalhostName reports names that mean this machine whatever DNS says (RFC 6761).
func isLocalhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// resolve gives the addresses the guard allows for host, or a *BlockedAddressError naming
// the first refused one when none is allowed. A literal address is not looked up.
func (g *guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if isLocalhostName(host) && !g.allowLoopback {
		return nil, &BlockedAddressError{Host: host, Reason: "loopback"}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := net.DefaultResolver.LookupNetIP
		if g.test != nil && g.test.lookup != nil {
			lookup = func(ctx context.Context, _, host string) ([]netip.Addr, error) { return g.test.lookup(ctx, host) }
		}
		addrs, err = lookup(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
	}
	var allowed []netip.Addr
	var refused error
	for _, a := range addrs {
		if reason := g.check(a); reason != "" {
			if refused == nil {
				refused = &BlockedAddressError{Host: host, Addr: a.Unmap(), Reason: reason}
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if refused == nil {
			refused = fmt.Errorf("no addresses for %s", host)
		}
		return nil, refused
	}
	return allowed, nil
}

// dialContext is the transport's dialer: it resolves addr's host itself, so the addresses it
// checks are the ones it connects to, and connects to the first allowed one that answers.
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, err
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), port)
		var conn net.Conn
		if g.test != nil && g.test.connect != nil {
			conn, err = g.test.connect(ctx, network, ap)
		} else {
			conn, err = g.dialer.DialContext(ctx, network, ap.String())
		}
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// control runs after the socket is made and before it connects: the last word on the address
// actually dialled, whatever resolved it.
func (g *guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %q: not an address", address)
	}
	if reason := g.check(ap.Addr()); reason != "" {
		return &BlockedAddressError{Addr: ap.Addr().Unmap(), Reason: reason}
	}
	return nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(p), nil
}

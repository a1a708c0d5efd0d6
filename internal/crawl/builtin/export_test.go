package builtin

import (
	"context"
	"net"
	"net/netip"
)

// WithTestNetwork returns cfg with name resolution replaced by lookup and the final connect
// to an address the guard allowed replaced by connect. The guard still judges every address
// lookup returns.
func WithTestNetwork(cfg Config,
	lookup func(ctx context.Context, host string) ([]netip.Addr, error),
	connect func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error),
) Config {
	cfg.test = &testNetwork{lookup: lookup, connect: connect}
	return cfg
}

// GuardControl runs the dialer's Control check on address ("ip:port").
func GuardControl(cfg Config, address string) error {
	return newGuard(cfg.AllowLoopback, cfg.AllowPrivate, nil).control("tcp", address, nil)
}

// DialGuarded dials address with the guarded net.Dialer alone (no name resolution, no
// pre-check), to show that Control refuses before connecting.
func DialGuarded(ctx context.Context, cfg Config, address string) (net.Conn, error) {
	return newGuard(cfg.AllowLoopback, cfg.AllowPrivate, nil).dialer.DialContext(ctx, "tcp", address)
}

package main

import (
	"net"
	"strconv"
	"testing"
)

func TestParsePortRangeLow(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"32768\t60999\n": 32768, "1024 65535": 1024} {
		got, err := parsePortRangeLow(in)
		if err != nil || got != want {
			t.Errorf("parsePortRangeLow(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "32768", "x 60999", "0 10", "70000 70001", "1 2 3"} {
		if got, err := parsePortRangeLow(in); err == nil {
			t.Errorf("parsePortRangeLow(%q) = %d, want an error", in, got)
		}
	}
}

// The harness restarts processes on the ports they had: those must lie where the kernel never
// puts the local end of an outgoing connection.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	low, err := ephemeralLow()
	if err != nil {
		t.Skipf("no ephemeral port range to read here: %v", err)
	}
	for range 20 {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		_, ps, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(ps)
		if port < 10000 || port >= low {
			t.Fatalf("freePort gave %s; want a port in [10000, %d)", addr, low)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("freePort gave %s, which cannot be listened on: %v", addr, err)
		}
		l.Close()
	}
}

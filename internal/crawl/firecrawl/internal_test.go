package firecrawl

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/retry"
)

// Not parallel: it swaps a package variable. Top-level tests that are not parallel run while
// every parallel one is paused, so nothing else calls VerifySignature meanwhile.
func TestVerifySignatureComparesInConstantTime(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"type":"crawl.page","id":"c1"}`)
	want := mac(secret, body)
	var calls [][2][]byte
	orig := macEqual
	t.Cleanup(func() { macEqual = orig })
	macEqual = func(a, b []byte) bool {
		calls = append(calls, [2][]byte{a, b})
		return orig(a, b)
	}

	require.NoError(t, VerifySignature(secret, body, Sign(secret, body)))
	bad := Sign(secret, []byte("other"))
	require.ErrorIs(t, VerifySignature(secret, body, bad), ErrBadSignature)

	// Both verdicts came from the constant-time comparison of the full MACs, not from an
	// early-exit string or byte comparison.
	require.Len(t, calls, 2)
	require.Equal(t, want, calls[0][0])
	require.Equal(t, want, calls[0][1])
	require.Equal(t, want, calls[1][0])
	require.Equal(t, mac(secret, []byte("other")), calls[1][1])
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":            0,
		"7":           7 * time.Second,
		" 12 ":        12 * time.Second,
		"0":           0,
		"-3":          0,
		"soon":        0,
		"99999999999": 24 * time.Hour,
		now.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
		now.Add(-time.Minute).Format(http.TimeFormat): 0,
	} {
		require.Equal(t, want, retry.ParseRetryAfter(in, now), in)
	}
}

func TestCheckNext(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "https://api.firecrawl.dev"})
	require.NoError(t, err)
	const id = "550e8400-e29b-41d4-a716-446655440000"
	base := "https://api.firecrawl.dev/v2/crawl/" + id
	for raw, want := range map[string]string{ // want "" means refused
		base + "?skip=10": base + "?skip=10",
		"https://API.firecrawl.dev:443/v2/crawl/" + id + "?skip=10": base + "?skip=10",
		base + "?skip=10#frag":                                  base + "?skip=10",
		"http://api.firecrawl.dev/v2/crawl/" + id + "?skip=10":  base + "?skip=10", // never downgraded
		"https://api.firecrawl.dev:8443/v2/crawl/" + id:         "",
		"https://api.firecrawl.dev.evil.example/v2/crawl/" + id: "",
		"https://169.254.169.254/v2/crawl/" + id:                "",
		"https://u:p@api.firecrawl.dev/v2/crawl/" + id:          "",
		"file://api.firecrawl.dev/v2/crawl/" + id:               "",
		"/v2/crawl/" + id + "?skip=10":                          "", // not absolute
		"https://api.firecrawl.dev/v2/crawl/other-id?skip=10":   "",
		base + "/../../admin":                                   "",
		"https://api.firecrawl.dev/v1/crawl/" + id:              "",
	} {
		got, err := c.checkNext(raw, id)
		if want == "" {
			require.Error(t, err, raw)
			continue
		}
		require.NoError(t, err, raw)
		require.Equal(t, want, got, raw)
	}

	// Self-hosted behind a path prefix: next must stay under it.
	c, err = New(Config{BaseURL: "http://gateway.internal:8080/firecrawl/"})
	require.NoError(t, err)
	_, err = c.checkNext("http://gateway.internal:8080/firecrawl/v2/crawl/"+id+"?skip=2", id)
	require.NoError(t, err)
	_, err = c.checkNext("http://gateway.internal:8080/v2/crawl/"+id+"?skip=2", id)
	require.Error(t, err)
}

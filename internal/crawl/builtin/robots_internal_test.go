package builtin

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRobots(t *testing.T) {
	t.Parallel()
	const body = `
# comment
User-agent: otherbot
Disallow: /

User-agent: *
User-agent: second-name
Disallow: /private       # trailing comment
Allow: /private/public
Disallow: /*.json$
Disallow: /search?
Disallow: /tmp*/cache
Allow: /page
Disallow: /page
Disallow:
Crawl-delay: 2.5
Sitemap: https://example.com/sitemap.xml
Disallow: /caf` + "\u00e9" + `
`
	r := parseRobots(body, "pipeline-crawler")
	require.Equal(t, 2500*time.Millisecond, r.crawlDelay)
	for target, want := range map[string]bool{
		"/":                      true,
		"/robots.txt":            true,
		"/private":               false,
		"/private/x":             false,
		"/privateer":             false,
		"/private/public":        true,
		"/private/public/y":      true,
		"/data.json":             false,
		"/data.json?x=1":         true, // $ anchors the end of path and query
		"/data.jsonl":            true,
		"/search":                true,
		"/search?q=x":            false,
		"/tmp/cache":             false,
		"/tmp123/a/cache":        false,
		"/tmp/other":             true,
		"/page":                  true, // equal length: allow wins
		"/caf%C3%A9":             false,
		"/caf%C3%A9/menu":        false,
		"/something-else?a=b#fr": true,
	} {
		u, err := url.Parse("https://example.com" + target)
		require.NoError(t, err)
		require.Equal(t, want, r.allowed(u), target)
	}

	other := parseRobots(body, "otherbot")
	require.False(t, other.allowed(&url.URL{Path: "/anything"}))
	require.Zero(t, other.crawlDelay)

	require.True(t, parseRobots("", "x").allowed(&url.URL{Path: "/a"}))
	require.True(t, parseRobots("Disallow: /\n", "x").allowed(&url.URL{Path: "/a"}), "rules before any user-agent are ignored")
	require.Equal(t, maxCrawlDelay, parseRobots("User-agent: *\nCrawl-delay: 86400\n", "x").crawlDelay)
}

func TestRobotsMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"/", "/", true},
		{"/a", "/abc", true},
		{"/a$", "/abc", false},
		{"/a$", "/a", true},
		{"*", "/x", true},
		{"/*", "/", true},
		{"/*.php", "/index.php", true},
		{"/*.php", "/a/index.php?x", true},
		{"/*.php$", "/a/index.php?x", false},
		{"/a*b*c", "/aXbYc", true},
		{"/a*b*c", "/aXcYb", false},
		{"/a*b$", "/abab", true},
		{"/a*b$", "/aba", false},
		{"/x**y", "/xy", true},
		{"/$", "/", true},
		{"/$", "/a", false},
	} {
		require.Equal(t, tc.want, robotsMatch(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

func TestProductToken(t *testing.T) {
	t.Parallel()
	require.Equal(t, "pipeline-crawler", productToken(DefaultUserAgent))
	require.Equal(t, "mybot", productToken("MyBot"))
	require.Equal(t, "mybot", productToken("MyBot (+https://x)"))
}

package builtin

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	base, err := url.Parse("https://example.com/docs/guide?x=1")
	require.NoError(t, err)
	for _, tc := range []struct {
		ref       string
		dropQuery bool
		want      string // "" means refused
	}{
		{"HTTP://Example.COM:80/a/../b#frag", false, "http://example.com/b"},
		{"https://example.com:443", false, "https://example.com/"},
		{"https://example.com:8443/x", false, "https://example.com:8443/x"},
		{"https://user:pw@example.com/x", false, "https://example.com/x"},
		{"https://example.com./x?", false, "https://example.com/x"},
		{"intro", false, "https://example.com/docs/intro"},
		{"../blog/?page=2#c", false, "https://example.com/blog/?page=2"},
		{"../blog/?page=2#c", true, "https://example.com/blog/"},
		{"?y=2", false, "https://example.com/docs/guide?y=2"},
		{"#top", false, "https://example.com/docs/guide?x=1"},
		{"//other.org/p", false, "https://other.org/p"},
		{"  /spaced  ", false, "https://example.com/spaced"},
		{"http://[2001:DB8::1]:80/", false, "http://[2001:db8::1]/"},
		{"http://[2001:db8::1]:8080/", false, "http://[2001:db8::1]:8080/"},
		{"/caf%C3%A9", false, "https://example.com/caf%C3%A9"},
		{"mailto:a@example.com", false, ""},
		{"javascript:alert(1)", false, ""},
		{"ftp://example.com/", false, ""},
		{"http:opaque", false, ""},
		{"http://", false, ""},
		{"https://exa mple.com/", false, ""},
		{"/" + strings.Repeat("a", maxURLLength), false, ""},
	} {
		u, err := normalizeURL(base, tc.ref, tc.dropQuery)
		if tc.want == "" {
			require.Error(t, err, tc.ref)
			continue
		}
		require.NoError(t, err, tc.ref)
		require.Equal(t, tc.want, u.String(), tc.ref)
	}
}

func TestExtractLinks(t *testing.T) {
	t.Parallel()
	page, err := url.Parse("https://example.com/docs/a")
	require.NoError(t, err)
	doc := `<html><head><base href="/base/"></head><body>
<a href="one">1</a> <a href="one#again">1 again</a> <a HREF="/two?q=1">2</a>
<a href="https://other.org/x">3</a> <a href="mailto:x@y">m</a> <a>no href</a>
<a href="skip" rel="NoFollow">s</a> <area href="map"> <base href="/ignored/">
<script>var s = '<a href="/in-script">';</script> <a href="" >empty</a>
</body></html>`
	var got []string
	for _, u := range extractLinks(doc, page, false) {
		got = append(got, u.String())
	}
	require.Equal(t, []string{
		"https://example.com/base/one",
		"https://example.com/two?q=1",
		"https://other.org/x",
		"https://example.com/base/map",
		"https://example.com/base/",
	}, got)
}

func TestScope(t *testing.T) {
	t.Parallel()
	s := scope{hosts: []string{"example.com"}}
	require.True(t, s.contains("example.com"))
	require.False(t, s.contains("docs.example.com"))
	require.False(t, s.contains("example.com:8080"))
	s.subdomains = true
	require.True(t, s.contains("docs.example.com"))
	require.True(t, s.contains("a.b.example.com"))
	require.False(t, s.contains("badexample.com"))
	require.False(t, s.contains("docs.example.com:8080"))
	s.add("www.example.org")
	require.True(t, s.contains("www.example.org"))
}

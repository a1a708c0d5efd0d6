package builtin

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalizeURL checks that normalizeURL never panics and that what it returns is
// normalised: http(s), lower-case host, no fragment or user info, and stable when
// normalised again. The seed corpus is in testdata/fuzz/FuzzNormalizeURL.
func FuzzNormalizeURL(f *testing.F) {
	f.Add("https://example.com/docs/", "../a?b=c#d", false)
	f.Add("http://Example.COM:80", "//[::1]:443/x", true)
	f.Fuzz(func(t *testing.T, baseRaw, ref string, dropQuery bool) {
		base, err := url.Parse(baseRaw)
		if err != nil || !base.IsAbs() {
			base = nil
		}
		u, err := normalizeURL(base, ref, dropQuery)
		if err != nil {
			return
		}
		s := u.String()
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("scheme %q in %q", u.Scheme, s)
		}
		if u.Host == "" || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("host %q in %q", u.Host, s)
		}
		if u.Fragment != "" || u.User != nil || (dropQuery && u.RawQuery != "") {
			t.Fatalf("not normalised: %q", s)
		}
		if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
			t.Fatalf("default port kept: %q", s)
		}
		again, err := normalizeURL(nil, s, dropQuery)
		if err != nil {
			t.Fatalf("normalised %q refused: %v", s, err)
		}
		if again.String() != s {
			t.Fatalf("not stable: %q -> %q", s, again.String())
		}
	})
}

// FuzzExtractLinks checks that extractLinks never panics on any document and returns only
// distinct, normalised http(s) links. The seed corpus is in testdata/fuzz/FuzzExtractLinks.
func FuzzExtractLinks(f *testing.F) {
	f.Add(`<a href="/a">a</a><base href="https://x.org/b/"><a href="c#d">c</a>`, true)
	f.Fuzz(func(t *testing.T, doc string, dropQuery bool) {
		page := &url.URL{Scheme: "https", Host: "example.com", Path: "/dir/page"}
		links := extractLinks(doc, page, dropQuery)
		if len(links) > maxLinksPerPage {
			t.Fatalf("%d links", len(links))
		}
		seen := map[string]bool{}
		for _, u := range links {
			s := u.String()
			if seen[s] {
				t.Fatalf("duplicate %q", s)
			}
			seen[s] = true
			if (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" || u.Host == "" {
				t.Fatalf("bad link %q", s)
			}
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
	})
}

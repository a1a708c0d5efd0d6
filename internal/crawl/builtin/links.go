package builtin

import (
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxLinksPerPage caps the links taken from one page; the rest are ignored.
const maxLinksPerPage = 5000

// extractLinks returns the http(s) targets of doc's <a href> and <area href> links, resolved
// against the document's first <base href> (itself resolved against pageURL) or pageURL, and
// normalised (see normalizeURL), each once, in document order. Links marked rel="nofollow"
// are left out.
func extractLinks(doc string, pageURL *url.URL, dropQuery bool) []*url.URL {
	var hrefs []string
	base := pageURL
	baseSeen := false
	z := html.NewTokenizer(strings.NewReader(doc))
	for len(hrefs) < maxLinksPerPage {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		name, hasAttr := z.TagName()
		a := atom.Lookup(name)
		if !hasAttr || (a != atom.A && a != atom.Area && a != atom.Base) {
			continue
		}
		var href, rel string
		hrefSet := false
		for hasAttr {
			var k, v []byte
			k, v, hasAttr = z.TagAttr()
			switch string(k) {
			case "href":
				if !hrefSet {
					href, hrefSet = string(v), true
				}
			case "rel":
				rel = string(v)
			}
		}
		if !hrefSet {
			continue
		}
		if a == atom.Base {
			if !baseSeen {
				baseSeen = true
				if b, err := normalizeURL(pageURL, href, false); err == nil {
					base = b
				}
			}
			continue
		}
		if hasToken(rel, "nofollow") {
			continue
		}
		hrefs = append(hrefs, href)
	}

	links := make([]*url.URL, 0, len(hrefs))
	seen := make(map[string]bool, len(hrefs))
	for _, h := range hrefs {
		u, err := normalizeURL(base, h, dropQuery)
		if err != nil {
			continue
		}
		if k := u.String(); !seen[k] {
			seen[k] = true
			links = append(links, u)
		}
	}
	return links
}

// hasToken reports whether the space-separated list s holds tok, ignoring case.
func hasToken(s, tok string) bool {
	for _, f := range strings.Fields(s) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}

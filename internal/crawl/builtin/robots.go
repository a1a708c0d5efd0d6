package builtin

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits on robots.txt.
const (
	maxRobotsBytes = 512 << 10 // read at most this much; the rest is ignored (as Google does)
	maxCrawlDelay  = 10 * time.Second
)

// robotsRules is what one robots.txt says to us.
type robotsRules struct {
	rules      []robotsRule // longest pattern first
	crawlDelay time.Duration
	// unavailable is set when robots.txt could not be read (5xx, 429, network error):
	// everything is disallowed, and err says why.
	unavailable bool
	transient   bool
	err         error
}

type robotsRule struct {
	pattern string
	allow   bool
}

// allowAll is the rule set of a site without robots.txt.
var allowAll = &robotsRules{}

// unavailableRobots disallows everything because robots.txt could not be read.
func unavailableRobots(err error, transient bool) *robotsRules {
	return &robotsRules{unavailable: true, transient: transient, err: err}
}

// allowed reports whether u may be fetched.
func (r *robotsRules) allowed(u *url.URL) bool {
	if r.unavailable {
		return false
	}
	target := u.EscapedPath()
	if target == "/robots.txt" {
		return true
	}
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	// Longest match wins; at equal length Allow wins, and rules are sorted so it comes first.
	for _, rule := range r.rules {
		if robotsMatch(rule.pattern, target) {
			return rule.allow
		}
	}
	return true
}

// productToken is the name robots.txt groups address us by: the User-Agent up to its first
// '/' or space, lower-cased.
func productToken(userAgent string) string {
	tok, _, _ := strings.Cut(userAgent, "/")
	tok, _, _ = strings.Cut(strings.TrimSpace(tok), " ")
	return strings.ToLower(tok)
}

// robotsGroup is one group of a robots.txt: the agents it names and its lines.
type robotsGroup struct {
	agents     []string
	rules      []robotsRule
	crawlDelay time.Duration
}

// parseRobots reads a robots.txt for the crawler whose product token is product (lower case).
// It never fails: lines it does not understand are ignored, as RFC 9309 asks.
func parseRobots(body, product string) *robotsRules {
	var groups []*robotsGroup
	var cur *robotsGroup
	inRules := false // a rule line was seen since the last user-agent line
	for line := range strings.Lines(body) {
		line, _, _ = strings.Cut(line, "#")
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		switch key {
		case "user-agent", "useragent", "user agent":
			if cur == nil || inRules {
				cur = &robotsGroup{}
				groups = append(groups, cur)
				inRules = false
			}
			agent, _, _ := strings.Cut(value, "/")
			cur.agents = append(cur.agents, strings.ToLower(strings.TrimSpace(agent)))
		case "allow", "disallow":
			if cur == nil {
				continue
			}
			inRules = true
			if value == "" {
				continue // "Disallow:" with no path allows everything: no rule needed
			}
			cur.rules = append(cur.rules, robotsRule{pattern: robotsPattern(value), allow: key == "allow"})
		case "crawl-delay":
			if cur == nil {
				continue
			}
			inRules = true
			if secs, err := strconv.ParseFloat(value, 64); err == nil && secs > 0 {
				cur.crawlDelay = min(time.Duration(secs*float64(time.Second)), maxCrawlDelay)
			}
		}
	}

	pick := func(name string) []*robotsGroup {
		var res []*robotsGroup
		for _, g := range groups {
			for _, a := range g.agents {
				if a == name {
					res = append(res, g)
					break
				}
			}
		}
		return res
	}
	chosen := pick(product)
	if len(chosen) == 0 {
		chosen = pick("*")
	}
	r := &robotsRules{}
	for _, g := range chosen {
		r.rules = append(r.rules, g.rules...)
		r.crawlDelay = max(r.crawlDelay, g.crawlDelay)
	}
	sort.SliceStable(r.rules, func(i, j int) bool {
		a, b := r.rules[i], r.rules[j]
		if len(a.pattern) != len(b.pattern) {
			return len(a.pattern) > len(b.pattern)
		}
		return a.allow && !b.allow
	})
	return r
}

// robotsPattern makes a rule's path comparable with an escaped URL path: it starts with '/'
// (or a wildcard) and non-ASCII bytes are percent-encoded as in URLs.
func robotsPattern(p string) string {
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
		p = "/" + p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c >= 0x80 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// robotsMatch reports whether pattern matches s from its start: '*' matches any run of
// bytes and a final '$' anchors the end.
func robotsMatch(pattern, s string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	pos := len(parts[0])
	if len(parts) == 1 {
		return !anchored || pos == len(s)
	}
	// Leftmost matching of the middle parts leaves the most room for the rest.
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s[pos:], p)
		if i < 0 {
			return false
		}
		pos += i + len(p)
	}
	last := parts[len(parts)-1]
	if anchored {
		return len(s)-pos >= len(last) && strings.HasSuffix(s, last)
	}
	return strings.Contains(s[pos:], last)
}

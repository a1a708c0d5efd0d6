package builtin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// maxURLLength caps the URLs the crawler queues; longer ones are almost always traps
// (session ids, endlessly growing query strings) and would not fit a document's uri.
const maxURLLength = 2048

// normalizeURL resolves ref against base (nil: ref must be absolute) and normalises it: http
// or https only, lower-case scheme and host, no default port, no user info, no fragment, an
// empty path made "/", and no query when dropQuery. The result is the URL's identity for
// deduplication and what is fetched.
func normalizeURL(base *url.URL, ref string, dropQuery bool) (*url.URL, error) {
	ref = strings.TrimSpace(ref)
	u, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	if base == nil {
		base = &url.URL{}
	}
	// ResolveReference also removes dot segments, from absolute refs too.
	u = base.ResolveReference(u)
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, errors.New("opaque url")
	}
	host, port := u.Hostname(), u.Port()
	host = strings.TrimRight(strings.ToLower(host), ".")
	if host == "" {
		return nil, errors.New("no host")
	}
	if !validHost(host) {
		return nil, fmt.Errorf("bad host %q", host)
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	u.Host = host
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if dropQuery {
		u.RawQuery = ""
	}
	u.ForceQuery = false
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
	if len(u.String()) > maxURLLength {
		return nil, fmt.Errorf("url longer than %d bytes", maxURLLength)
	}
	return u, nil
}

// validHost accepts an IP address (IPv6 without zone) or a name of non-empty labels of letters,
// digits, '-' and '_', non-ASCII letters included (the transport converts them).
func validHost(host string) bool {
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	if !utf8.ValidString(host) || strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return false
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c >= 0x80 && unicode.IsPrint(c):
		default:
			return false
		}
	}
	return true
}

// pathFilter is a crawl's IncludePaths and ExcludePaths, compiled.
type pathFilter struct {
	include, exclude []*regexp.Regexp
}

func compilePathFilter(include, exclude []string) (pathFilter, error) {
	var f pathFilter
	var err error
	if f.include, err = compilePatterns("include_paths", include); err != nil {
		return f, err
	}
	f.exclude, err = compilePatterns("exclude_paths", exclude)
	return f, err
}

func compilePatterns(field string, patterns []string) ([]*regexp.Regexp, error) {
	res := make([]*regexp.Regexp, 0, len(patterns))
	for i, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, errs.InvalidArgument(field, "pattern %d: %v", i, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// excluded reports whether p matches an ExcludePaths pattern.
func (f pathFilter) excluded(p string) bool {
	for _, re := range f.exclude {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// allows reports whether a page with path p may be saved (and, for links, queued).
func (f pathFilter) allows(p string) bool {
	if f.excluded(p) {
		return false
	}
	if len(f.include) == 0 {
		return true
	}
	for _, re := range f.include {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// scope is the set of hosts a crawl may visit.
type scope struct {
	hosts      []string // host[:port] as normalised
	subdomains bool
}

func (s *scope) add(host string) {
	for _, h := range s.hosts {
		if h == host {
			return
		}
	}
	s.hosts = append(s.hosts, host)
}

// contains reports whether host (normalised host[:port]) is one of the crawl's hosts or, with
// subdomains, a subdomain of one on the same port.
func (s *scope) contains(host string) bool {
	name, port := splitHost(host)
	for _, h := range s.hosts {
		if h == host {
			return true
		}
		if s.subdomains {
			hn, hp := splitHost(h)
			if hp == port && strings.HasSuffix(name, "."+hn) {
				return true
			}
		}
	}
	return false
}

func splitHost(host string) (name, port string) {
	if h, p, err := net.SplitHostPort(host); err == nil {
		return h, p
	}
	return strings.Trim(host, "[]"), ""
}

// binaryExtensions are path extensions of files that are never text pages; links to them are
// not queued, which saves a request each.
var binaryExtensions = map[string]bool{
	".7z": true, ".apk": true, ".avi": true, ".avif": true, ".bin": true, ".bmp": true,
	".bz2": true, ".css": true, ".deb": true, ".dmg": true, ".doc": true, ".docx": true,
	".eot": true, ".epub": true, ".exe": true, ".flac": true, ".gif": true, ".gz": true,
	".heic": true, ".ico": true, ".iso": true, ".jar": true, ".jpeg": true, ".jpg": true,
	".js": true, ".m4a": true, ".mjs": true, ".mkv": true, ".mov": true, ".mp3": true,
	".mp4": true, ".msi": true, ".ogg": true, ".otf": true, ".pdf": true, ".png": true,
	".ppt": true, ".pptx": true, ".rar": true, ".rpm": true, ".svg": true, ".tar": true,
	".tgz": true, ".tif": true, ".tiff": true, ".ttf": true, ".wasm": true, ".wav": true,
	".webm": true, ".webp": true, ".woff": true, ".woff2": true, ".xls": true, ".xlsx": true,
	".xz": true, ".zip": true, ".zst": true,
}

func hasBinaryExtension(p string) bool {
	return binaryExtensions[strings.ToLower(path.Ext(p))]
}

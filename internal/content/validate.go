package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// prepareSource validates params and returns the row to insert, defaults applied.
func prepareSource(p *CreateSourceParams) (CreateSourceParams, error) {
	out := CreateSourceParams{
		Name:    strings.TrimSpace(p.Name),
		URL:     strings.TrimSpace(p.URL),
		Crawler: p.Crawler,
	}
	if out.URL != "" {
		if len(out.URL) > MaxURLLength {
			return out, errs.InvalidArgument("url", "longer than %d bytes", MaxURLLength)
		}
		if err := checkText("url", out.URL); err != nil {
			return out, err
		}
		u, err := url.Parse(out.URL)
		if err != nil {
			return out, errs.InvalidArgument("url", "%v", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return out, errs.InvalidArgument("url", "must be an absolute http or https URL")
		}
		if u.Hostname() == "" {
			return out, errs.InvalidArgument("url", "has no host")
		}
		if out.Name == "" {
			out.Name = strings.ToLower(u.Hostname())
		}
	}
	if out.Name == "" {
		out.Name = "upload"
	}
	if err := checkText("name", out.Name); err != nil {
		return out, err
	}
	if n := utf8.RuneCountInString(out.Name); n > MaxNameLength {
		return out, errs.InvalidArgument("name", "%d characters, more than %d", n, MaxNameLength)
	}
	if out.Crawler == "" {
		out.Crawler = CrawlerBuiltin
	}
	if !out.Crawler.Valid() {
		return out, errs.InvalidArgument("crawler", "unknown crawler %q; use %q or %q", out.Crawler, CrawlerBuiltin, CrawlerFirecrawl)
	}
	opts, err := prepareCrawlOptions(p.CrawlOptions)
	if err != nil {
		return out, err
	}
	out.CrawlOptions = opts
	return out, nil
}

func prepareCrawlOptions(o CrawlOptions) (CrawlOptions, error) {
	if o.Limit == 0 {
		o.Limit = DefaultCrawlLimit
	}
	if o.Limit < 1 || o.Limit > MaxCrawlLimit {
		return o, errs.InvalidArgument("crawl_options.limit", "%d is outside 1..%d", o.Limit, MaxCrawlLimit)
	}
	if o.MaxDepth < 0 || o.MaxDepth > MaxCrawlDepth {
		return o, errs.InvalidArgument("crawl_options.max_depth", "%d is outside 0..%d", o.MaxDepth, MaxCrawlDepth)
	}
	var err error
	if o.IncludePaths, err = preparePatterns("crawl_options.include_paths", o.IncludePaths); err != nil {
		return o, err
	}
	if o.ExcludePaths, err = preparePatterns("crawl_options.exclude_paths", o.ExcludePaths); err != nil {
		return o, err
	}
	return o, nil
}

// preparePatterns checks that every pattern compiles. An empty list comes back nil so that what
// is read from jsonb equals what was written.
func preparePatterns(field string, patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	if len(patterns) > MaxCrawlPatterns {
		return nil, errs.InvalidArgument(field, "%d patterns, more than %d", len(patterns), MaxCrawlPatterns)
	}
	for i, p := range patterns {
		if err := checkText(field, p); err != nil {
			return nil, err
		}
		if _, err := regexp.Compile(p); err != nil {
			return nil, errs.InvalidArgument(field, "entry %d: %v", i, err)
		}
	}
	return patterns, nil
}

// preparedDocument is a validated DocumentInput with its derived columns.
type preparedDocument struct {
	DocumentInput
	hash string
	size int64
}

// prepareDocument validates the i-th document of a request and fills in the content type, hash
// and size. Errors name the field as "documents[i].<field>".
func prepareDocument(i int, d DocumentInput, maxBytes int64) (preparedDocument, error) {
	field := func(name string) string { return fmt.Sprintf("documents[%d].%s", i, name) }
	if d.URI == "" {
		return preparedDocument{}, errs.InvalidArgument(field("uri"), "is required")
	}
	if len(d.URI) > MaxURILength {
		return preparedDocument{}, errs.InvalidArgument(field("uri"), "longer than %d bytes", MaxURILength)
	}
	if err := checkText(field("uri"), d.URI); err != nil {
		return preparedDocument{}, err
	}
	if len(d.Title) > MaxTitleLength {
		return preparedDocument{}, errs.InvalidArgument(field("title"), "longer than %d bytes", MaxTitleLength)
	}
	if err := checkText(field("title"), d.Title); err != nil {
		return preparedDocument{}, err
	}
	ct, err := normalizeContentType(d.ContentType, d.URI)
	if err != nil {
		return preparedDocument{}, errs.InvalidArgument(field("content_type"), "%v", err)
	}
	d.ContentType = ct
	if int64(len(d.Content)) > maxBytes {
		return preparedDocument{}, errs.InvalidArgument(field("content"), "%d bytes, more than the limit of %d", len(d.Content), maxBytes)
	}
	if err := checkText(field("content"), d.Content); err != nil {
		return preparedDocument{}, err
	}
	if d.Metadata, err = prepareMetadata(field("metadata"), d.Metadata); err != nil {
		return preparedDocument{}, err
	}
	return preparedDocument{DocumentInput: d, hash: contentHash(d.Content), size: int64(len(d.Content))}, nil
}

// contentHash is the hex SHA-256 of content, hashed where it lies: []byte(content) would copy
// every document once more on its way in (a megabyte document, a megabyte of garbage).
func contentHash(content string) string {
	// The hash only reads the bytes and keeps none of them, so the string's own memory can
	// serve as the slice.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(content), len(content)))
	return hex.EncodeToString(sum[:])
}

// prepareDocuments validates a whole request before anything is written.
func prepareDocuments(docs []DocumentInput, maxBytes int64) ([]preparedDocument, error) {
	if len(docs) > MaxDocumentsPerUpsert {
		return nil, errs.InvalidArgument("documents", "%d documents, more than %d in one request", len(docs), MaxDocumentsPerUpsert)
	}
	out := make([]preparedDocument, len(docs))
	seen := make(map[string]int, len(docs))
	for i, d := range docs {
		p, err := prepareDocument(i, d, maxBytes)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[p.URI]; dup {
			return nil, errs.InvalidArgument(fmt.Sprintf("documents[%d].uri", i), "duplicates documents[%d].uri %q", j, p.URI)
		}
		seen[p.URI] = i
		out[i] = p
	}
	return out, nil
}

func prepareMetadata(field string, md map[string]string) (map[string]string, error) {
	if md == nil {
		return map[string]string{}, nil
	}
	total := 0
	for k, v := range md {
		if k == "" {
			return nil, errs.InvalidArgument(field, "empty key")
		}
		if err := checkText(field, k); err != nil {
			return nil, err
		}
		if err := checkText(field, v); err != nil {
			return nil, err
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return nil, errs.InvalidArgument(field, "%d bytes, more than %d", total, MaxMetadataBytes)
	}
	return md, nil
}

// checkText refuses what Postgres text and jsonb refuse: invalid UTF-8 and NUL bytes.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return errs.InvalidArgument(field, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errs.InvalidArgument(field, "contains a NUL byte")
	}
	return nil
}

// normalizeContentType accepts the three known types, with or without parameters, and infers
// one from the uri when ct is empty.
func normalizeContentType(ct, uri string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return contentTypeFromURI(uri), nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("%q is not a media type", ct)
	}
	switch mt {
	case ContentTypeText, ContentTypeMarkdown, ContentTypeHTML:
		return mt, nil
	}
	return "", fmt.Errorf("%q is not one of %s, %s, %s", ct, ContentTypeText, ContentTypeMarkdown, ContentTypeHTML)
}

func contentTypeFromURI(uri string) string {
	p := uri
	// A crawled page's uri is a URL whose query or fragment must not hide the extension; an
	// upload name is taken as it is, since '#' or '?' may be part of a file name.
	if strings.Contains(uri, "://") {
		if u, err := url.Parse(uri); err == nil {
			p = u.Path
		}
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".md", ".markdown":
		return ContentTypeMarkdown
	case ".html", ".htm":
		return ContentTypeHTML
	}
	return ContentTypeText
}

// cleanError makes a status error storable: valid UTF-8, no NUL bytes, at most 4 KiB.
func cleanError(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= maxSourceErrorBytes {
		return s
	}
	cut := maxSourceErrorBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// parseID parses a required uuid; field is the API name of the id.
func parseID(field, id string) (uuid.UUID, error) {
	if id == "" {
		return uuid.UUID{}, errs.InvalidArgument(field, "is required")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.UUID{}, errs.InvalidArgument(field, "%q is not a UUID", id)
	}
	return u, nil
}

// pageSize applies the default and the cap.
func pageSize(n int) (int, error) {
	switch {
	case n < 0:
		return 0, errs.InvalidArgument("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return n, nil
}

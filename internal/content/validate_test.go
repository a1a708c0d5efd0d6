package content

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var ia *errs.InvalidArgumentError
	require.ErrorAs(t, err, &ia)
	require.Equal(t, field, ia.Field, ia.Error())
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
}

func TestPrepareSourceDefaults(t *testing.T) {
	t.Parallel()
	got, err := prepareSource(&CreateSourceParams{URL: " https://Docs.Example.com:8443/guide "})
	require.NoError(t, err)
	require.Equal(t, CreateSourceParams{
		Name:         "docs.example.com",
		URL:          "https://Docs.Example.com:8443/guide",
		Crawler:      CrawlerBuiltin,
		CrawlOptions: CrawlOptions{Limit: DefaultCrawlLimit},
	}, got)

	got, err = prepareSource(&CreateSourceParams{Name: "  ", CrawlOptions: CrawlOptions{IncludePaths: []string{}}})
	require.NoError(t, err)
	require.Equal(t, "upload", got.Name)
	require.Empty(t, got.URL)
	require.Nil(t, got.CrawlOptions.IncludePaths, "empty lists are stored as absent")

	got, err = prepareSource(&CreateSourceParams{
		Name: "Docs", URL: "http://x.test", Crawler: CrawlerFirecrawl,
		CrawlOptions: CrawlOptions{Limit: MaxCrawlLimit, MaxDepth: MaxCrawlDepth, IncludePaths: []string{`^/docs/.*`}, ExcludePaths: []string{`\.pdf$`}},
	})
	require.NoError(t, err)
	require.Equal(t, "Docs", got.Name)
	require.Equal(t, CrawlerFirecrawl, got.Crawler)
}

func TestPrepareSourceInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		p     CreateSourceParams
		field string
	}{
		{"relative url", CreateSourceParams{URL: "/docs"}, "url"},
		{"no scheme", CreateSourceParams{URL: "example.com/docs"}, "url"},
		{"ftp", CreateSourceParams{URL: "ftp://example.com/"}, "url"},
		{"no host", CreateSourceParams{URL: "https:///path"}, "url"},
		{"unparsable", CreateSourceParams{URL: "http://[::1"}, "url"},
		{"control char", CreateSourceParams{URL: "http://example.com/\x00"}, "url"},
		{"too long url", CreateSourceParams{URL: "https://example.com/" + strings.Repeat("a", MaxURLLength)}, "url"},
		{"long name", CreateSourceParams{Name: strings.Repeat("é", MaxNameLength+1)}, "name"},
		{"nul in name", CreateSourceParams{Name: "a\x00b"}, "name"},
		{"bad utf-8 name", CreateSourceParams{Name: "a\xffb"}, "name"},
		{"crawler", CreateSourceParams{URL: "https://x.test", Crawler: "wget"}, "crawler"},
		{"negative limit", CreateSourceParams{CrawlOptions: CrawlOptions{Limit: -1}}, "crawl_options.limit"},
		{"limit too big", CreateSourceParams{CrawlOptions: CrawlOptions{Limit: MaxCrawlLimit + 1}}, "crawl_options.limit"},
		{"negative depth", CreateSourceParams{CrawlOptions: CrawlOptions{MaxDepth: -1}}, "crawl_options.max_depth"},
		{"depth too big", CreateSourceParams{CrawlOptions: CrawlOptions{MaxDepth: MaxCrawlDepth + 1}}, "crawl_options.max_depth"},
		{"include regex", CreateSourceParams{CrawlOptions: CrawlOptions{IncludePaths: []string{"ok", "(unclosed"}}}, "crawl_options.include_paths"},
		{"exclude regex", CreateSourceParams{CrawlOptions: CrawlOptions{ExcludePaths: []string{"*"}}}, "crawl_options.exclude_paths"},
		{"too many patterns", CreateSourceParams{CrawlOptions: CrawlOptions{ExcludePaths: make([]string, MaxCrawlPatterns+1)}}, "crawl_options.exclude_paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := prepareSource(&tc.p)
			requireField(t, err, tc.field)
		})
	}
}

func TestPrepareDocumentsInvalid(t *testing.T) {
	t.Parallel()
	ok := DocumentInput{URI: "a.txt", Content: "fine"}
	with := func(f func(d *DocumentInput)) DocumentInput {
		d := ok
		f(&d)
		return d
	}
	for _, tc := range []struct {
		name  string
		docs  []DocumentInput
		field string
	}{
		{"empty uri", []DocumentInput{with(func(d *DocumentInput) { d.URI = "" })}, "documents[0].uri"},
		{"long uri", []DocumentInput{ok, with(func(d *DocumentInput) { d.URI = strings.Repeat("u", MaxURILength+1) })}, "documents[1].uri"},
		{"nul in uri", []DocumentInput{with(func(d *DocumentInput) { d.URI = "a\x00" })}, "documents[0].uri"},
		{"bad utf-8 uri", []DocumentInput{with(func(d *DocumentInput) { d.URI = "\xc3" })}, "documents[0].uri"},
		{"long title", []DocumentInput{with(func(d *DocumentInput) { d.Title = strings.Repeat("t", MaxTitleLength+1) })}, "documents[0].title"},
		{"nul in title", []DocumentInput{with(func(d *DocumentInput) { d.Title = "\x00" })}, "documents[0].title"},
		{"content type", []DocumentInput{with(func(d *DocumentInput) { d.ContentType = "application/pdf" })}, "documents[0].content_type"},
		{"content type garbage", []DocumentInput{with(func(d *DocumentInput) { d.ContentType = "text/" })}, "documents[0].content_type"},
		{"nul in content", []DocumentInput{ok, with(func(d *DocumentInput) { d.URI = "b" }), with(func(d *DocumentInput) { d.URI = "c"; d.Content = "x\x00y" })}, "documents[2].content"},
		{"bad utf-8 content", []DocumentInput{with(func(d *DocumentInput) { d.Content = "caf\xe9" })}, "documents[0].content"},
		{"content too big", []DocumentInput{with(func(d *DocumentInput) { d.Content = strings.Repeat("x", 101) })}, "documents[0].content"},
		{"metadata empty key", []DocumentInput{with(func(d *DocumentInput) { d.Metadata = map[string]string{"": "v"} })}, "documents[0].metadata"},
		{"metadata nul", []DocumentInput{with(func(d *DocumentInput) { d.Metadata = map[string]string{"k": "\x00"} })}, "documents[0].metadata"},
		{"metadata bad utf-8", []DocumentInput{with(func(d *DocumentInput) { d.Metadata = map[string]string{"\xff": "v"} })}, "documents[0].metadata"},
		{"metadata too big", []DocumentInput{with(func(d *DocumentInput) { d.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataBytes)} })}, "documents[0].metadata"},
		{"duplicate uri", []DocumentInput{ok, with(func(d *DocumentInput) { d.URI = "b" }), ok}, "documents[2].uri"},
		{"too many", make([]DocumentInput, MaxDocumentsPerUpsert+1), "documents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := prepareDocuments(tc.docs, 100)
			requireField(t, err, tc.field)
		})
	}
}

func TestPrepareDocumentDerivedFields(t *testing.T) {
	t.Parallel()
	p, err := prepareDocument(0, DocumentInput{URI: "x", Content: "héllo"}, 100)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("héllo"))
	require.Equal(t, hex.EncodeToString(sum[:]), p.hash)
	require.EqualValues(t, len("héllo"), p.size)
	require.NotNil(t, p.Metadata)

	p, err = prepareDocument(0, DocumentInput{URI: "x"}, 100)
	require.NoError(t, err, "empty content is a document too")
	require.Zero(t, p.size)
}

func TestContentType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ given, uri, want string }{
		{"", "README.md", ContentTypeMarkdown},
		{"", "notes.MARKDOWN", ContentTypeMarkdown},
		{"", "https://example.com/a/page.html?x=1#top", ContentTypeHTML},
		{"", "https://example.com/index.htm", ContentTypeHTML},
		{"", "https://example.com/docs/", ContentTypeText},
		{"", "https://example.com/x.md?format=raw", ContentTypeMarkdown},
		{"", "report#2.md", ContentTypeMarkdown},
		{"", "plain", ContentTypeText},
		{"", "data.csv", ContentTypeText},
		{"text/html; charset=utf-8", "a.md", ContentTypeHTML},
		{"TEXT/Markdown", "a.txt", ContentTypeMarkdown},
		{"text/plain", "a.html", ContentTypeText},
	} {
		got, err := normalizeContentType(tc.given, tc.uri)
		require.NoError(t, err, tc)
		require.Equal(t, tc.want, got, tc)
	}
}

func TestCleanError(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a\uFFFDbc", cleanError("a\xffb\x00c"))
	long := strings.Repeat("é", maxSourceErrorBytes) // two bytes each
	got := cleanError(long)
	require.LessOrEqual(t, len(got), maxSourceErrorBytes)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, "", cleanError(""))
}

func TestStatusesInto(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"pending", "crawling", "processing", "ready", "failed"}, statusesInto(SourceStatusProcessing))
	require.Equal(t, []string{"pending", "ready", "failed"}, statusesInto(SourceStatusCrawling))
	require.Empty(t, statusesInto(SourceStatusPending))
}

func FuzzValidateDocument(f *testing.F) {
	f.Add("a.md", "Title", "", "# hi", "k", "v")
	f.Add("https://example.com/x.html?q=1", "", "text/html; charset=utf-8", "<p>x</p>", "", "")
	f.Add("", "", "", "", "", "")
	f.Add("a", "t\x00", "text/plain", "caf\xe9", "\xff", "\x00")
	f.Add("b", "", "text/", "x\x00", "k", "")
	f.Fuzz(func(t *testing.T, uri, title, contentType, content, key, value string) {
		in := DocumentInput{URI: uri, Title: title, ContentType: contentType, Content: content}
		if key != "" || value != "" {
			in.Metadata = map[string]string{key: value}
		}
		docs, err := prepareDocuments([]DocumentInput{in}, 1<<16)
		if err != nil {
			var ia *errs.InvalidArgumentError
			require.ErrorAs(t, err, &ia)
			require.True(t, strings.HasPrefix(ia.Field, "documents[0]."), ia.Field)
			return
		}
		d := docs[0]
		for _, s := range []string{d.URI, d.Title, d.Content} {
			require.True(t, utf8.ValidString(s))
			require.NotContains(t, s, "\x00")
		}
		for k, v := range d.Metadata {
			require.True(t, utf8.ValidString(k) && utf8.ValidString(v))
			require.NotContains(t, k+v, "\x00")
		}
		require.NotEmpty(t, d.URI)
		require.LessOrEqual(t, len(d.URI), MaxURILength)
		require.Contains(t, []string{ContentTypeText, ContentTypeMarkdown, ContentTypeHTML}, d.ContentType)
		sum := sha256.Sum256([]byte(content))
		require.Equal(t, hex.EncodeToString(sum[:]), d.hash)
		require.EqualValues(t, len(content), d.size)
		require.Equal(t, content, d.Content)
	})
}

// contentHash is the hex SHA-256 of the content's bytes, and does not copy them to get it.
// Not parallel: it counts the process's allocations.
func TestContentHashDoesNotCopyTheContent(t *testing.T) {
	big := strings.Repeat("word ", 200_000)
	for _, s := range []string{"", "a", "ünïcödé\n", big} {
		sum := sha256.Sum256([]byte(s))
		require.Equal(t, hex.EncodeToString(sum[:]), contentHash(s))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_ = contentHash(big)
	}
	runtime.ReadMemStats(&after)
	// The hex digest is all it allocates; a copy of the content would be a megabyte a call.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(10*1024))
}

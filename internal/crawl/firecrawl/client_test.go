package firecrawl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl/firecrawlfake"
	"github.com/pipeline-dev/pipeline/internal/errs"
)

const testKey = "fc-test-0123456789abcdef"

type testBundle struct {
	fake   *firecrawlfake.Server
	client *firecrawl.Client
}

// setup starts a fake serving cfg (the key is filled in) and a client of it.
func setup(t *testing.T, cfg firecrawlfake.Config, adjust ...func(*firecrawl.Config)) *testBundle {
	t.Helper()
	cfg.APIKey = testKey
	fake := firecrawlfake.New(t, cfg)
	ccfg := firecrawl.Config{BaseURL: fake.URL(), APIKey: testKey, HTTPClient: fake.Client()}
	for _, a := range adjust {
		a(&ccfg)
	}
	client, err := firecrawl.New(ccfg)
	require.NoError(t, err)
	return &testBundle{fake: fake, client: client}
}

// site builds n pages under https://docs.example.com/p/<i>.
func site(n int) []firecrawlfake.Page {
	out := make([]firecrawlfake.Page, n)
	for i := range out {
		out[i] = firecrawlfake.Page{
			URL:      fmt.Sprintf("https://docs.example.com/p/%d", i),
			Title:    fmt.Sprintf("Page %d", i),
			Markdown: fmt.Sprintf("# Page %d\n\nBody of page %d.", i, i),
		}
	}
	return out
}

// startCompleted starts a crawl of the fake's site and completes it.
func (b *testBundle) startCompleted(t *testing.T) string {
	t.Helper()
	id, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	require.NoError(t, err)
	require.NoError(t, b.fake.Complete(id))
	return id
}

func requirePermanent(t *testing.T, err error, contains ...string) {
	t.Helper()
	require.Error(t, err)
	transient, _ := errs.IsTransient(err)
	require.False(t, transient, "want a permanent error, got transient: %v", err)
	for _, c := range contains {
		require.ErrorContains(t, err, c)
	}
	require.NotContains(t, err.Error(), testKey)
}

func requireTransient(t *testing.T, err error, wantRetryAfter time.Duration) {
	t.Helper()
	require.Error(t, err)
	transient, after := errs.IsTransient(err)
	require.True(t, transient, "want a transient error, got permanent: %v", err)
	require.Equal(t, wantRetryAfter, after)
	require.NotContains(t, err.Error(), testKey)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c, err := firecrawl.New(firecrawl.Config{})
	require.NoError(t, err, "the zero config is the hosted API with defaults")
	require.NotNil(t, c)

	for name, tc := range map[string]struct {
		cfg   firecrawl.Config
		field string
	}{
		"not http":    {firecrawl.Config{BaseURL: "ftp://x"}, "base_url"},
		"no host":     {firecrawl.Config{BaseURL: "http://"}, "base_url"},
		"credentials": {firecrawl.Config{BaseURL: "https://user:secret@x"}, "base_url"},
		"query":       {firecrawl.Config{BaseURL: "https://x/?a=b"}, "base_url"},
		"bad timeout": {firecrawl.Config{Timeout: -time.Second}, "timeout"},
	} {
		_, err := firecrawl.New(tc.cfg)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, name)
		require.ErrorContains(t, err, tc.field, name)
		require.NotContains(t, err.Error(), "secret", name)
	}
}

func TestBaseURLWithV2(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(1)}, func(c *firecrawl.Config) { c.BaseURL += "/v2/" })
	id := b.startCompleted(t)
	st, err := b.client.GetCrawl(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusCompleted, st.Status)
}

func TestStartCrawlSendsDocumentedFields(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(3)})
	id, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{
		URL: "https://docs.example.com/",
		Options: crawl.Options{
			Limit: 50, MaxDepth: 3,
			IncludePaths: []string{"^/p/.*"}, ExcludePaths: []string{"^/private/"},
			AllowSubdomains: true, IgnoreQueryParameters: true,
		},
		Webhook: &firecrawl.Webhook{
			URL:      "https://pipeline.example.com/v1/webhooks/firecrawl",
			Headers:  map[string]string{"X-Pipeline-Source": "src-1"},
			Metadata: map[string]any{"job_id": "job-42"},
			Events:   []string{"started", "page", "completed", "failed"},
		},
	})
	require.NoError(t, err)
	require.NotEmpty(t, id)
	info, ok := b.fake.Crawl(id)
	require.True(t, ok)
	require.Equal(t, "scraping", info.Status)

	bodies := b.fake.StartBodies()
	require.Len(t, bodies, 1)
	require.JSONEq(t, `{
		"url": "https://docs.example.com/",
		"limit": 50,
		"maxDiscoveryDepth": 3,
		"includePaths": ["^/p/.*"],
		"excludePaths": ["^/private/"],
		"allowSubdomains": true,
		"ignoreQueryParameters": true,
		"scrapeOptions": {"formats": ["markdown"], "onlyMainContent": true},
		"webhook": {
			"url": "https://pipeline.example.com/v1/webhooks/firecrawl",
			"headers": {"X-Pipeline-Source": "src-1"},
			"metadata": {"job_id": "job-42"},
			"events": ["started", "page", "completed", "failed"]
		}
	}`, string(bodies[0]))
}

func TestStartCrawlDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(1)})
	off := false
	_, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/", OnlyMainContent: &off})
	require.NoError(t, err)
	bodies := b.fake.StartBodies()
	require.Len(t, bodies, 1)
	// Limit 0 is crawl.DefaultLimit, as for every crawler; depth 0 (unbounded) and false
	// flags are left to Firecrawl's defaults; no webhook unless asked.
	require.JSONEq(t, fmt.Sprintf(`{
		"url": "https://docs.example.com/",
		"limit": %d,
		"scrapeOptions": {"formats": ["markdown"], "onlyMainContent": false}
	}`, crawl.DefaultLimit), string(bodies[0]))
}

func TestStartCrawlValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	for name, tc := range map[string]struct {
		req   firecrawl.StartRequest
		field string
	}{
		"no url":         {firecrawl.StartRequest{}, "url"},
		"relative url":   {firecrawl.StartRequest{URL: "/docs"}, "url"},
		"negative limit": {firecrawl.StartRequest{URL: "https://x/", Options: crawl.Options{Limit: -1}}, "limit"},
		"negative depth": {firecrawl.StartRequest{URL: "https://x/", Options: crawl.Options{MaxDepth: -1}}, "max_depth"},
		"no webhook url": {firecrawl.StartRequest{URL: "https://x/", Webhook: &firecrawl.Webhook{}}, "webhook.url"},
		"unknown event":  {firecrawl.StartRequest{URL: "https://x/", Webhook: &firecrawl.Webhook{URL: "https://h/", Events: []string{"crawl.page"}}}, "webhook.events"},
		"bad metadata":   {firecrawl.StartRequest{URL: "https://x/", Webhook: &firecrawl.Webhook{URL: "https://h/", Metadata: map[string]any{"f": func() {}}}}, "webhook.metadata"},
	} {
		_, err := b.client.StartCrawl(context.Background(), tc.req)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, name)
		require.ErrorContains(t, err, tc.field, name)
	}
	require.Empty(t, b.fake.Requests(), "nothing is sent for a request that cannot be right")
}

func TestStartCrawlServerRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	_, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{
		URL: "https://docs.example.com/", Options: crawl.Options{IncludePaths: []string{"("}},
	})
	requirePermanent(t, err, "HTTP 400", "invalid path pattern")
	var apiErr *firecrawl.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
}

func TestAllPagesFollowsNext(t *testing.T) {
	t.Parallel()
	pages := site(7)
	pages[2].FinalURL = "https://docs.example.com/p/2-moved"
	pages[5].StatusCode = http.StatusNotFound
	b := setup(t, firecrawlfake.Config{Site: pages, PageSize: 2})
	id := b.startCompleted(t)

	var got []firecrawl.Page
	st, err := b.client.AllPages(context.Background(), id, func(p firecrawl.Page) error {
		got = append(got, p)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusCompleted, st.Status)
	require.Equal(t, 7, st.Total)
	require.Equal(t, 7, st.Completed)
	require.Empty(t, st.Next)
	require.Empty(t, st.Pages)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), st.ExpiresAt, time.Minute)

	require.Len(t, got, 7, "every page exactly once")
	for i, p := range got {
		require.Equal(t, pages[i].URL, p.SourceURL)
		require.Equal(t, pages[i].Title, p.Title)
		require.Equal(t, pages[i].Markdown, p.Markdown)
	}
	require.Equal(t, "https://docs.example.com/p/2-moved", got[2].URL, "the final URL wins")
	require.Equal(t, pages[0].URL, got[0].URL)
	require.Equal(t, 200, got[0].StatusCode)
	require.Equal(t, 404, got[5].StatusCode)
	require.Equal(t, "Not Found", got[5].Error)

	// One status read and three "next" pages, each asked for once, all with the key.
	var queries []string
	for _, r := range b.fake.Requests() {
		if r.Method == http.MethodGet {
			queries = append(queries, r.RawQuery)
			require.True(t, r.Authorized)
		}
	}
	require.Equal(t, []string{"", "skip=2", "skip=4", "skip=6"}, queries)
}

func TestGetCrawlOnePage(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(5), PageSize: 2})
	id := b.startCompleted(t)
	st, err := b.client.GetCrawl(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, st.Pages, 2)
	require.True(t, st.Terminal())
	require.Equal(t, fmt.Sprintf("%s/v2/crawl/%s?skip=2", b.fake.URL(), id), st.Next)
	require.Equal(t, 5, st.CreditsUsed)
}

func TestAllPagesRefusesNextElsewhere(t *testing.T) {
	t.Parallel()
	var evilHits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
	}))
	t.Cleanup(evil.Close)

	b := setup(t, firecrawlfake.Config{Site: site(5), PageSize: 2})
	id := b.startCompleted(t)
	for name, base := range map[string]string{
		"other port":       evil.URL,
		"other host":       "https://attacker.example",
		"other scheme":     "ftp://127.0.0.1",
		"credentials":      strings.Replace(b.fake.URL(), "http://", "http://u:p@", 1),
		"other path":       b.fake.URL() + "/admin",
		"not a URL at all": "::",
	} {
		b.fake.SetNextBase(base)
		var n int
		_, err := b.client.AllPages(context.Background(), id, func(firecrawl.Page) error { n++; return nil })
		requirePermanent(t, err, "refusing")
		require.Equal(t, 2, n, "%s: the first reply's pages are read, nothing after", name)
	}
	require.Zero(t, evilHits.Load(), "nothing, and so no key, went to the other server")
}

// Some self-hosted Firecrawl versions write https into "next" when served over http
// (firecrawl/firecrawl#2275): the link is followed on BaseURL's own scheme.
func TestAllPagesNextWithOtherScheme(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(5), PageSize: 2})
	id := b.startCompleted(t)
	b.fake.SetNextBase(strings.Replace(b.fake.URL(), "http://", "https://", 1))
	var n int
	_, err := b.client.AllPages(context.Background(), id, func(firecrawl.Page) error { n++; return nil })
	require.NoError(t, err)
	require.Equal(t, 5, n)
}

func TestAllPagesEmptyRepliesWithoutEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	for i := range 5 {
		b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: fmt.Sprintf(
			`{"success":true,"status":"completed","next":"%s/v2/crawl/abc?skip=%d","data":[]}`, b.fake.URL(), i+1)})
	}
	_, err := b.client.AllPages(context.Background(), "abc", func(firecrawl.Page) error { return nil })
	requirePermanent(t, err, "no progress")
	require.Len(t, b.fake.Requests(), 3)
}

func TestAllPagesWhileScraping(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(6), PageSize: 2})
	id, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	require.NoError(t, err)
	require.NoError(t, b.fake.Advance(id, 2)) // the status poll scrapes one more: 3 of 6

	var n int
	st, err := b.client.AllPages(context.Background(), id, func(firecrawl.Page) error { n++; return nil })
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusScraping, st.Status)
	require.False(t, st.Terminal())
	require.Equal(t, 3, n)
	require.NotEmpty(t, st.Next, "more is to come")
}

func TestAllPagesStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(6), PageSize: 2})
	id := b.startCompleted(t)
	stop := fmt.Errorf("disk full")
	var n int
	_, err := b.client.AllPages(context.Background(), id, func(firecrawl.Page) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)
}

func TestAllPagesLoopingNext(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	reply := func(next string) firecrawlfake.Response {
		return firecrawlfake.Response{Status: 200, Body: fmt.Sprintf(
			`{"success":true,"status":"completed","total":1,"completed":1,"next":%q,"data":[{"markdown":"x","metadata":{"sourceURL":"https://a/"}}]}`, next)}
	}
	next := b.fake.URL() + "/v2/crawl/abc?skip=1"
	b.fake.RespondNext(reply(next))
	b.fake.RespondNext(reply(next))
	_, err := b.client.AllPages(context.Background(), "abc", func(firecrawl.Page) error { return nil })
	requirePermanent(t, err, "loops")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(3)})
	id, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	require.NoError(t, err)

	require.NoError(t, b.client.Cancel(context.Background(), id))
	info, _ := b.fake.Crawl(id)
	require.Equal(t, "cancelled", info.Status)
	st, err := b.client.GetCrawl(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusCancelled, st.Status)
	require.True(t, st.Terminal())

	// Cancelling again is refused by the server: permanent, with its reason.
	err = b.client.Cancel(context.Background(), id)
	requirePermanent(t, err, "HTTP 409", "already cancelled")

	err = b.client.Cancel(context.Background(), "00000000-0000-0000-0000-000000000000")
	requirePermanent(t, err, "Crawl job not found")
	require.ErrorIs(t, err, errs.ErrNotFound)
}

func TestErrorsEndpoint(t *testing.T) {
	t.Parallel()
	pages := site(4)
	pages[1].ScrapeError = "Request timeout after 30000ms"
	b := setup(t, firecrawlfake.Config{Site: pages, RobotsBlocked: []string{"https://docs.example.com/admin"}})
	id := b.startCompleted(t)

	res, err := b.client.Errors(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, res.Errors, 1)
	require.Equal(t, pages[1].URL, res.Errors[0].URL)
	require.Equal(t, "Request timeout after 30000ms", res.Errors[0].Error)
	require.NotEmpty(t, res.Errors[0].ID)
	require.False(t, res.Errors[0].Timestamp.IsZero())
	require.Equal(t, []string{"https://docs.example.com/admin"}, res.RobotsBlocked)

	// The failed page is not among the results.
	var urls []string
	_, err = b.client.AllPages(context.Background(), id, func(p firecrawl.Page) error { urls = append(urls, p.URL); return nil })
	require.NoError(t, err)
	require.Equal(t, []string{pages[0].URL, pages[2].URL, pages[3].URL}, urls)
}

func TestRateLimitedIsTransientWithRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	b.fake.RespondNext(firecrawlfake.Response{
		Status: http.StatusTooManyRequests,
		Header: http.Header{"Retry-After": {"7"}},
		Body:   `{"success":false,"error":"Rate limit exceeded. Consumed (req/min): 21, Remaining (req/min): 0."}`,
	})
	_, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	requireTransient(t, err, 7*time.Second)
	require.ErrorContains(t, err, "HTTP 429")
	require.ErrorContains(t, err, "Rate limit exceeded")

	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	b.fake.RespondNext(firecrawlfake.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {date}}})
	_, err = b.client.GetCrawl(context.Background(), "abc")
	transient, after := errs.IsTransient(err)
	require.True(t, transient)
	require.InDelta(t, 90*time.Second, after, float64(2*time.Second))
}

func TestServerErrorIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	for _, status := range []int{500, 502, 503} {
		b.fake.RespondNext(firecrawlfake.Response{Status: status, Body: `{"success":false,"error":"An unexpected error occurred on the server."}`})
		_, err := b.client.GetCrawl(context.Background(), "abc")
		requireTransient(t, err, 0)
		require.ErrorContains(t, err, fmt.Sprintf("HTTP %d", status))
	}
	b.fake.RespondNext(firecrawlfake.Response{Status: http.StatusServiceUnavailable, Body: "<html>bad gateway</html>"})
	err := b.client.Cancel(context.Background(), "abc")
	requireTransient(t, err, 0)
	require.ErrorContains(t, err, "<html>bad gateway</html>", "a non-JSON body is quoted as text")
}

func TestWrongKeyIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{}, func(c *firecrawl.Config) { c.APIKey = "fc-wrong" })
	_, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	requirePermanent(t, err, "firecrawl rejected the API key", "HTTP 401")
	require.ErrorIs(t, err, firecrawl.ErrUnauthorized)
	require.NotContains(t, err.Error(), "fc-wrong")
	require.False(t, b.fake.Requests()[0].Authorized)
}

func TestKeyNeverInErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	echo := fmt.Sprintf(`{"success":false,"error":"Bearer %s is not allowed here; key=%s"}`, testKey, testKey)
	for _, status := range []int{400, 403, 404, 422, 429, 500} {
		b.fake.RespondNext(firecrawlfake.Response{Status: status, Body: echo})
		_, err := b.client.GetCrawl(context.Background(), "abc")
		require.Error(t, err)
		require.NotContains(t, err.Error(), testKey, "status %d", status)
	}
	b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: fmt.Sprintf(`{"success":false,"error":"%s"}`, testKey)})
	_, err := b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	requirePermanent(t, err, "[redacted]")
}

func TestClientErrorsArePermanentWithMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	b.fake.RespondNext(firecrawlfake.Response{Status: 422, Body: `{"success":false,"error":"Bad Request","details":[{"message":"limit must be positive"}]}`})
	_, err := b.client.GetCrawl(context.Background(), "abc")
	requirePermanent(t, err, "HTTP 422", "Bad Request; limit must be positive")

	long := strings.Repeat("very long explanation ", 100)
	b.fake.RespondNext(firecrawlfake.Response{Status: 400, Body: fmt.Sprintf(`{"error":%q}`, long)})
	_, err = b.client.GetCrawl(context.Background(), "abc")
	requirePermanent(t, err, "HTTP 400", "…")
	require.Less(t, len(err.Error()), 500)

	_, err = b.client.GetCrawl(context.Background(), "00000000-0000-0000-0000-000000000000")
	requirePermanent(t, err, "HTTP 404", "Crawl job not found")
	require.ErrorIs(t, err, errs.ErrNotFound)
}

func TestMalformedReplyIsPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	for _, body := range []string{`{"status":"completed","data":[`, `<html>ok</html>`, `[]`} {
		b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: body})
		_, err := b.client.GetCrawl(context.Background(), "abc")
		requirePermanent(t, err, "malformed reply")
	}
	b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: `{"success":true}`})
	_, err := b.client.GetCrawl(context.Background(), "abc")
	requirePermanent(t, err, "no crawl status")

	b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: `{"success":true,"url":"x"}`})
	_, err = b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	requirePermanent(t, err, "no crawl id")

	b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: `{"success":true,"id":"../../etc"}`})
	_, err = b.client.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	requirePermanent(t, err, "crawl id")
}

func TestLenientStatusReply(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	b.fake.RespondNext(firecrawlfake.Response{Status: 200, Body: `{
		"success": true, "status": "completed", "total": "3", "completed": 2.0, "creditsUsed": null,
		"expiresAt": "not a time", "next": null, "somethingNew": {"a": 1},
		"data": [
			{"markdown": "# A", "metadata": {"title": ["A", "B"], "url": "https://a/final", "sourceURL": "https://a/", "statusCode": "200"}},
			"not a document",
			{"markdown": 5, "metadata": "not an object"},
			{"metadata": {"url": "https://c/", "error": null, "statusCode": {"x": 1}}}
		]}`})
	st, err := b.client.GetCrawl(context.Background(), "abc")
	require.NoError(t, err)
	require.Equal(t, 3, st.Total)
	require.Equal(t, 2, st.Completed)
	require.Zero(t, st.CreditsUsed)
	require.True(t, st.ExpiresAt.IsZero())
	require.Empty(t, st.Next)
	require.Equal(t, []firecrawl.Page{
		{URL: "https://a/final", SourceURL: "https://a/", Title: "A", Markdown: "# A", StatusCode: 200},
		{},
		{URL: "https://c/", SourceURL: "https://c/"},
	}, st.Pages)
}

func TestBadCrawlID(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	for _, id := range []string{"", "../x", "a/b", "a?b", "a b", strings.Repeat("a", 129)} {
		_, err := b.client.GetCrawl(context.Background(), id)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, id)
		_, err = b.client.AllPages(context.Background(), id, func(firecrawl.Page) error { return nil })
		require.ErrorIs(t, err, errs.ErrInvalidArgument, id)
		require.ErrorIs(t, b.client.Cancel(context.Background(), id), errs.ErrInvalidArgument, id)
		_, err = b.client.Errors(context.Background(), id)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, id)
	}
	require.Empty(t, b.fake.Requests())
}

func TestNetworkFailureIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, err := firecrawl.New(firecrawl.Config{BaseURL: base, APIKey: testKey})
	require.NoError(t, err)
	_, err = c.GetCrawl(context.Background(), "abc")
	requireTransient(t, err, 0)
}

func TestTimeoutIsTransientButCallerCancelIsNot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c, err := firecrawl.New(firecrawl.Config{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client(), Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.GetCrawl(context.Background(), "abc")
	requireTransient(t, err, 0)

	c, err = firecrawl.New(firecrawl.Config{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.GetCrawl(ctx, "abc")
	requirePermanent(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSelfHostedWithoutKey(t *testing.T) {
	t.Parallel()
	fake := firecrawlfake.New(t, firecrawlfake.Config{Site: site(2)})
	c, err := firecrawl.New(firecrawl.Config{BaseURL: fake.URL(), HTTPClient: fake.Client()})
	require.NoError(t, err)
	id, err := c.StartCrawl(context.Background(), firecrawl.StartRequest{URL: "https://docs.example.com/"})
	require.NoError(t, err)
	require.NoError(t, fake.Complete(id))
	var n int
	_, err = c.AllPages(context.Background(), id, func(firecrawl.Page) error { n++; return nil })
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// The status reply's JSON is what the fake writes; a sanity check that the fake and the
// documented shape agree on the names the client reads.
func TestFakeStatusShape(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: site(1)})
	id := b.startCompleted(t)
	req, err := http.NewRequest(http.MethodGet, b.fake.URL()+"/v2/crawl/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := b.fake.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	for _, k := range []string{"status", "total", "completed", "creditsUsed", "expiresAt", "next", "data"} {
		require.Contains(t, v, k)
	}
}

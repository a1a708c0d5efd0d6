package firecrawlfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl/firecrawlfake"
)

const (
	testKey = "fc-fake-key"
	secret  = "whsec-test"
)

// received is one webhook request as the receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

type testBundle struct {
	fake *firecrawlfake.Server
	recv *receiver
}

func setup(t *testing.T, cfg firecrawlfake.Config) *testBundle {
	t.Helper()
	cfg.APIKey = testKey
	cfg.WebhookSecret = []byte(secret)
	if cfg.Site == nil {
		cfg.Site = []firecrawlfake.Page{
			{URL: "https://site.example/a", Title: "A", Markdown: "# A"},
			{URL: "https://site.example/b", Title: "B", Markdown: "# B"},
		}
	}
	return &testBundle{fake: firecrawlfake.New(t, cfg), recv: newReceiver(t)}
}

// api sends one request to the fake with the key and decodes the JSON reply.
func (b *testBundle) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.fake.URL()+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := b.fake.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// start starts a crawl whose webhook goes to the receiver.
func (b *testBundle) start(t *testing.T, events ...string) string {
	t.Helper()
	hook := map[string]any{
		"url":      b.recv.srv.URL + "/v1/webhooks/firecrawl",
		"headers":  map[string]string{"X-Source": "s1"},
		"metadata": map[string]any{"job_id": "j1"},
	}
	if len(events) > 0 {
		hook["events"] = events
	}
	status, out := b.api(t, http.MethodPost, "/v2/crawl", map[string]any{"url": "https://site.example/", "webhook": hook})
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, true, out["success"])
	return out["id"].(string)
}

func types(rs []received) []string {
	var out []string
	for _, r := range rs {
		var v struct{ Type string }
		_ = json.Unmarshal(r.body, &v)
		out = append(out, v.Type)
	}
	return out
}

func TestDeliveriesAreSignedAndParse(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	id := b.start(t)
	require.NoError(t, b.fake.Complete(id))
	require.Equal(t, 4, b.fake.Pending())
	ds, err := b.fake.Flush(context.Background())
	require.NoError(t, err)
	require.Len(t, ds, 4)
	require.Zero(t, b.fake.Pending())

	got := b.recv.all()
	require.Equal(t, []string{"crawl.started", "crawl.page", "crawl.page", "crawl.completed"}, types(got))
	seen := map[string]bool{}
	for i, r := range got {
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.Equal(t, "s1", r.header.Get("X-Source"), "custom headers are sent")
		require.NoError(t, firecrawl.VerifySignature([]byte(secret), r.body, r.header.Get(firecrawl.SignatureHeader)))
		ev, err := firecrawl.ParseEvent(r.body)
		require.NoError(t, err)
		require.Equal(t, id, ev.CrawlID)
		require.NotEmpty(t, ev.DeliveryID)
		require.False(t, seen[ev.DeliveryID], "each event has its own delivery id")
		seen[ev.DeliveryID] = true
		require.Equal(t, map[string]any{"job_id": "j1"}, ev.Metadata, "metadata is echoed")
		require.True(t, ev.Success)
		require.Equal(t, ds[i].DeliveryID, ev.DeliveryID)
		require.Equal(t, http.StatusOK, ds[i].StatusCode)
		require.Equal(t, r.body, ds[i].Body)
	}
	page, err := firecrawl.ParseEvent(got[1].body)
	require.NoError(t, err)
	require.Equal(t, []firecrawl.Page{{URL: "https://site.example/a", SourceURL: "https://site.example/a", Title: "A", Markdown: "# A", StatusCode: 200}}, page.Pages)
}

func TestDuplicateCarriesSameDeliveryID(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	id := b.start(t, "completed")
	b.fake.OnNext("crawl.completed", firecrawlfake.FaultDuplicate)
	require.NoError(t, b.fake.Complete(id))
	_, err := b.fake.Flush(context.Background())
	require.NoError(t, err)

	got := b.recv.all()
	require.Len(t, got, 2)
	require.Equal(t, got[0].body, got[1].body, "a retry is the same bytes")
	a, err := firecrawl.ParseEvent(got[0].body)
	require.NoError(t, err)
	c, err := firecrawl.ParseEvent(got[1].body)
	require.NoError(t, err)
	require.Equal(t, a.DeliveryID, c.DeliveryID)

	d, err := b.fake.Redeliver(context.Background(), a.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, d.StatusCode)
	require.Len(t, b.recv.all(), 3)
	require.Equal(t, got[0].body, b.recv.all()[2].body)
}

func TestDroppedEventIsNotDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	id := b.start(t)
	b.fake.OnNext("crawl.completed", firecrawlfake.FaultDrop)
	require.NoError(t, b.fake.Complete(id))
	ds, err := b.fake.Flush(context.Background())
	require.NoError(t, err)

	require.Equal(t, []string{"crawl.started", "crawl.page", "crawl.page"}, types(b.recv.all()))
	last := ds[len(ds)-1]
	require.Equal(t, "crawl.completed", last.Type)
	require.Equal(t, firecrawlfake.FaultDrop, last.Fault)
	require.Zero(t, last.StatusCode)

	// The crawl is completed all the same: a poll finds out.
	status, out := b.api(t, http.MethodGet, "/v2/crawl/"+id, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "completed", out["status"])
}

func TestUnsignedAndBadlySigned(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	id := b.start(t, "page")
	b.fake.OnNext("crawl.page", firecrawlfake.FaultUnsigned)
	b.fake.OnNext("crawl.page", firecrawlfake.FaultBadSignature)
	require.NoError(t, b.fake.Complete(id))
	_, err := b.fake.Flush(context.Background())
	require.NoError(t, err)

	got := b.recv.all()
	require.Len(t, got, 2)
	require.Empty(t, got[0].header.Get(firecrawl.SignatureHeader))
	require.ErrorIs(t, firecrawl.VerifySignature([]byte(secret), got[0].body, got[0].header.Get(firecrawl.SignatureHeader)), firecrawl.ErrMissingSignature)
	require.True(t, strings.HasPrefix(got[1].header.Get(firecrawl.SignatureHeader), "sha256="))
	require.ErrorIs(t, firecrawl.VerifySignature([]byte(secret), got[1].body, got[1].header.Get(firecrawl.SignatureHeader)), firecrawl.ErrBadSignature)
}

func TestPollsComplete(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{PollsToComplete: 3, Site: []firecrawlfake.Page{
		{URL: "https://site.example/1"}, {URL: "https://site.example/2"}, {URL: "https://site.example/3"}, {URL: "https://site.example/4"},
	}})
	id := b.start(t)
	for i, want := range []struct {
		status    string
		completed float64
	}{{"scraping", 1}, {"scraping", 2}, {"completed", 4}} {
		_, out := b.api(t, http.MethodGet, "/v2/crawl/"+id, nil)
		require.Equal(t, want.status, out["status"], "poll %d", i+1)
		require.Equal(t, want.completed, out["completed"], "poll %d", i+1)
		require.Equal(t, float64(4), out["total"])
	}
	info, ok := b.fake.Crawl(id)
	require.True(t, ok)
	require.Equal(t, 3, info.Polls)
	require.Equal(t, 6, b.fake.Pending(), "started, four pages, completed")
}

func TestFailAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	failed := b.start(t, "failed")
	require.NoError(t, b.fake.Fail(failed, "DNS lookup failed"))
	require.Error(t, b.fake.Complete(failed), "a failed crawl stays failed")
	cancelled := b.start(t, "failed")
	status, out := b.api(t, http.MethodDelete, "/v2/crawl/"+cancelled, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "cancelled", out["status"])
	status, _ = b.api(t, http.MethodDelete, "/v2/crawl/"+cancelled, nil)
	require.Equal(t, http.StatusConflict, status)

	_, err := b.fake.Flush(context.Background())
	require.NoError(t, err)
	got := b.recv.all()
	require.Len(t, got, 2)
	for i, want := range []struct{ id, reason string }{{failed, "DNS lookup failed"}, {cancelled, "Crawl cancelled"}} {
		ev, err := firecrawl.ParseEvent(got[i].body)
		require.NoError(t, err)
		require.Equal(t, firecrawl.EventFailed, ev.Type)
		require.Equal(t, want.id, ev.CrawlID)
		require.False(t, ev.Success)
		require.Equal(t, want.reason, ev.Error)
	}
	_, out = b.api(t, http.MethodGet, "/v2/crawl/"+failed, nil)
	require.Equal(t, "failed", out["status"])
	require.Nil(t, out["next"])
}

func TestAPIChecks(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})

	req, err := http.NewRequest(http.MethodGet, b.fake.URL()+"/v2/crawl/x", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := b.fake.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.False(t, b.fake.Requests()[0].Authorized)

	status, out := b.api(t, http.MethodPost, "/v2/crawl", map[string]any{"url": "https://site.example/", "maxDepth": 2})
	require.Equal(t, http.StatusBadRequest, status, "v1's maxDepth is not a v2 field")
	require.Contains(t, out["error"], "maxDepth")

	status, _ = b.api(t, http.MethodPost, "/v2/crawl", map[string]any{"url": "not a url"})
	require.Equal(t, http.StatusBadRequest, status)

	status, _ = b.api(t, http.MethodPost, "/v2/crawl", map[string]any{"url": "https://site.example/", "webhook": map[string]any{"url": "https://h/", "events": []string{"crawl.page"}}})
	require.Equal(t, http.StatusBadRequest, status)

	status, out = b.api(t, http.MethodGet, "/v2/crawl/nope", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, "Crawl job not found", out["error"])

	require.Len(t, b.fake.StartBodies(), 3)
}

func TestLimitAndPaths(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{Site: []firecrawlfake.Page{
		{URL: "https://site.example/docs/1"}, {URL: "https://site.example/docs/private/2"},
		{URL: "https://site.example/blog/3"}, {URL: "https://site.example/docs/4"}, {URL: "https://site.example/docs/5"},
	}})
	_, out := b.api(t, http.MethodPost, "/v2/crawl", map[string]any{
		"url": "https://site.example/", "includePaths": []string{"^/docs/"}, "excludePaths": []string{"/private/"}, "limit": 2,
	})
	id := out["id"].(string)
	require.NoError(t, b.fake.Complete(id))
	_, out = b.api(t, http.MethodGet, "/v2/crawl/"+id, nil)
	var urls []string
	for _, d := range out["data"].([]any) {
		urls = append(urls, d.(map[string]any)["metadata"].(map[string]any)["sourceURL"].(string))
	}
	require.Equal(t, []string{"https://site.example/docs/1", "https://site.example/docs/4"}, urls)
}

func TestWebhooksStayOnThisMachine(t *testing.T) {
	t.Parallel()
	b := setup(t, firecrawlfake.Config{})
	_, out := b.api(t, http.MethodPost, "/v2/crawl", map[string]any{
		"url": "https://site.example/", "webhook": map[string]any{"url": "https://hooks.example.com/x", "events": []string{"started"}},
	})
	require.NotEmpty(t, out["id"])
	ds, err := b.fake.Flush(context.Background())
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.ErrorContains(t, ds[0].Err, "off this machine")
	require.Zero(t, ds[0].StatusCode)
}

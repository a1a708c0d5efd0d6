package firecrawl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl/firecrawlfake"
)

// hookServer is the smallest receiver the pieces allow, shaped like the real endpoint: verify,
// parse, deduplicate on the delivery id, act. It keeps per-crawl state in memory.
type hookServer struct {
	srv    *httptest.Server
	secret []byte

	mu       sync.Mutex
	seen     map[string]bool
	pages    map[string][]string // crawl id -> page URLs
	state    map[string]string   // crawl id -> "started", "completed", "failed: <reason>"
	rejected int
}

func newHookServer(t *testing.T, secret []byte) *hookServer {
	h := &hookServer{secret: secret, seen: map[string]bool{}, pages: map[string][]string{}, state: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := firecrawl.ReadBody(r.Body)
	if errors.Is(err, firecrawl.ErrEventTooLarge) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := firecrawl.VerifySignature(h.secret, body, r.Header.Get(firecrawl.SignatureHeader)); err != nil {
		h.mu.Lock()
		h.rejected++
		h.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	ev, err := firecrawl.ParseEvent(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen[ev.DeliveryID] {
		return // a retry of something already done
	}
	h.seen[ev.DeliveryID] = true
	switch ev.Type {
	case firecrawl.EventStarted:
		h.state[ev.CrawlID] = "started"
	case firecrawl.EventPage:
		for _, p := range ev.Pages {
			h.pages[ev.CrawlID] = append(h.pages[ev.CrawlID], p.URL)
		}
	case firecrawl.EventCompleted:
		h.state[ev.CrawlID] = "completed"
	case firecrawl.EventFailed:
		h.state[ev.CrawlID] = "failed: " + ev.Error
	}
}

func (h *hookServer) snapshot() (map[string]string, map[string][]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	state := map[string]string{}
	for k, v := range h.state {
		state[k] = v
	}
	pages := map[string][]string{}
	for k, v := range h.pages {
		pages[k] = append([]string(nil), v...)
	}
	return state, pages, h.rejected
}

// TestWebhookFlow runs the scenarios end to end: signed and unsigned deliveries, a
// duplicate, a lost crawl.completed found by polling, and a failed crawl.
func TestWebhookFlow(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec-flow")
	hooks := newHookServer(t, secret)
	fake := firecrawlfake.New(t, firecrawlfake.Config{APIKey: testKey, Site: site(3), PageSize: 2, WebhookSecret: secret})
	client, err := firecrawl.New(firecrawl.Config{BaseURL: fake.URL(), APIKey: testKey, HTTPClient: fake.Client()})
	require.NoError(t, err)
	ctx := context.Background()
	start := func() string {
		id, err := client.StartCrawl(ctx, firecrawl.StartRequest{
			URL:     "https://docs.example.com/",
			Webhook: &firecrawl.Webhook{URL: hooks.srv.URL + "/v1/webhooks/firecrawl", Metadata: map[string]any{"job_id": "j"}},
		})
		require.NoError(t, err)
		return id
	}

	ok := start()
	fake.OnNext("crawl.page", firecrawlfake.FaultDuplicate)
	fake.OnNext("crawl.page", firecrawlfake.FaultUnsigned)
	fake.OnNext("crawl.completed", firecrawlfake.FaultDrop)
	require.NoError(t, fake.Complete(ok))

	failed := start()
	require.NoError(t, fake.Advance(failed, 1))
	require.NoError(t, fake.Fail(failed, "site unreachable"))

	ds, err := fake.Flush(ctx)
	require.NoError(t, err)
	var unsigned firecrawlfake.Delivery
	for _, d := range ds {
		if d.Fault == firecrawlfake.FaultUnsigned {
			unsigned = d
			require.Equal(t, http.StatusUnauthorized, d.StatusCode)
		}
	}

	state, pages, rejected := hooks.snapshot()
	require.Equal(t, 1, rejected, "the unsigned delivery was refused")
	require.Equal(t, "started", state[ok], "crawl.completed was lost")
	require.Equal(t, []string{site(3)[0].URL, site(3)[2].URL}, pages[ok], "the duplicate counted once; the unsigned page not at all")
	require.Equal(t, "failed: site unreachable", state[failed])
	require.Equal(t, []string{site(3)[0].URL}, pages[failed])

	// Firecrawl retries the refused delivery, signed this time.
	d, err := fake.Redeliver(ctx, unsigned.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, d.StatusCode)
	_, pages, _ = hooks.snapshot()
	require.ElementsMatch(t, []string{site(3)[0].URL, site(3)[1].URL, site(3)[2].URL}, pages[ok])

	// The reconciler: a crawl silent too long is polled and settled from the real state.
	st, err := client.GetCrawl(ctx, ok)
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusCompleted, st.Status)
	var all []string
	st, err = client.AllPages(ctx, ok, func(p firecrawl.Page) error { all = append(all, p.URL); return nil })
	require.NoError(t, err)
	require.True(t, st.Terminal())
	require.Len(t, all, 3)

	st, err = client.GetCrawl(ctx, failed)
	require.NoError(t, err)
	require.Equal(t, firecrawl.StatusFailed, st.Status)
}

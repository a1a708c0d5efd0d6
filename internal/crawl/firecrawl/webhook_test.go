package firecrawl_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
)

// HMAC-SHA256 test vector (key "key"), computed independently of this package.
const (
	vectorKey  = "key"
	vectorBody = "The quick brown fox jumps over the lazy dog"
	vectorMAC  = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
)

func TestSignMatchesKnownVector(t *testing.T) {
	t.Parallel()
	require.Equal(t, "sha256="+vectorMAC, firecrawl.Sign([]byte(vectorKey), []byte(vectorBody)))
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	secret, body := []byte(vectorKey), []byte(vectorBody)
	flipped := "sha256=" + vectorMAC[:10] + "0" + vectorMAC[11:] // '8' -> '0'

	for name, tc := range map[string]struct {
		secret, body []byte
		header       string
		want         error // nil, or the sentinel the error must match
	}{
		"good":                 {secret, body, "sha256=" + vectorMAC, nil},
		"good, upper-case hex": {secret, body, "sha256=" + strings.ToUpper(vectorMAC), nil},
		"good, padded":         {secret, body, "  sha256=" + vectorMAC + " ", nil},
		"one digit off":        {secret, body, flipped, firecrawl.ErrBadSignature},
		"body changed":         {secret, []byte(vectorBody + "."), "sha256=" + vectorMAC, firecrawl.ErrBadSignature},
		"other secret":         {[]byte("other"), body, "sha256=" + vectorMAC, firecrawl.ErrBadSignature},
		"missing":              {secret, body, "", firecrawl.ErrMissingSignature},
		"blank":                {secret, body, "   ", firecrawl.ErrMissingSignature},
		"no prefix":            {secret, body, vectorMAC, firecrawl.ErrBadSignature},
		"wrong algorithm":      {secret, body, "sha1=" + vectorMAC, firecrawl.ErrBadSignature},
		"prefix case":          {secret, body, "SHA256=" + vectorMAC, firecrawl.ErrBadSignature},
		"prefix only":          {secret, body, "sha256=", firecrawl.ErrBadSignature},
		"too short":            {secret, body, "sha256=" + vectorMAC[:62], firecrawl.ErrBadSignature},
		"too long":             {secret, body, "sha256=" + vectorMAC + "00", firecrawl.ErrBadSignature},
		"not hex":              {secret, body, "sha256=" + strings.Repeat("zz", 32), firecrawl.ErrBadSignature},
		"two signatures":       {secret, body, "sha256=" + vectorMAC + ",sha256=" + vectorMAC, firecrawl.ErrBadSignature},
		"no secret":            {nil, body, "sha256=" + vectorMAC, firecrawl.ErrNoSecret},
		"empty body, signed":   {secret, nil, firecrawl.Sign(secret, nil), nil},
	} {
		err := firecrawl.VerifySignature(tc.secret, tc.body, tc.header)
		if tc.want == nil {
			require.NoError(t, err, name)
			continue
		}
		require.ErrorIs(t, err, tc.want, name)
		require.NotContains(t, err.Error(), vectorMAC, "%s: the error never tells the right signature", name)
	}
}

// Sample payloads as in Firecrawl's webhook reference (docs.firecrawl.dev/webhooks/events and
// api-reference/endpoint/webhook-crawl-*), with our own ids.
const (
	sampleStarted = `{
		"success": true, "type": "crawl.started", "id": "550e8400-e29b-41d4-a716-446655440000",
		"webhookId": "a1b2c3d4-0001-0000-0000-000000000000", "data": [],
		"metadata": {"job_id": "job-42", "attempt": 12345678901234567890}}`
	samplePage = `{
		"success": true, "type": "crawl.page", "id": "550e8400-e29b-41d4-a716-446655440000",
		"webhookId": "a1b2c3d4-0002-0000-0000-000000000000",
		"data": [{
			"markdown": "# Welcome\n\nMain content.",
			"metadata": {
				"title": "Page Title", "description": "Page description",
				"url": "https://example.com/page/", "sourceURL": "https://example.com/page",
				"statusCode": 200, "contentType": "text/html", "scrapeId": "550e8400-e29b-41d4-a716-446655440001",
				"proxyUsed": "basic", "cacheState": "hit", "cachedAt": "2025-09-03T21:11:25.636Z", "creditsUsed": 1
			}
		}],
		"metadata": {"job_id": "job-42"}, "timestamp": "2025-09-03T21:11:26.000Z"}`
	sampleCompleted = `{
		"success": true, "type": "crawl.completed", "id": "550e8400-e29b-41d4-a716-446655440000",
		"webhookId": "a1b2c3d4-0003-0000-0000-000000000000", "data": [], "metadata": {}}`
	sampleFailed = `{
		"success": false, "type": "crawl.failed", "id": "550e8400-e29b-41d4-a716-446655440000",
		"webhookId": "a1b2c3d4-0004-0000-0000-000000000000", "data": [], "metadata": {},
		"error": "Crawl failed: site unreachable"}`
)

func TestParseEventSamples(t *testing.T) {
	t.Parallel()
	const crawlID = "550e8400-e29b-41d4-a716-446655440000"

	ev, err := firecrawl.ParseEvent([]byte(sampleStarted))
	require.NoError(t, err)
	require.Equal(t, firecrawl.EventStarted, ev.Type)
	require.True(t, ev.Known())
	require.Equal(t, crawlID, ev.CrawlID)
	require.Equal(t, "a1b2c3d4-0001-0000-0000-000000000000", ev.DeliveryID)
	require.True(t, ev.Success)
	require.Empty(t, ev.Pages)
	require.Equal(t, map[string]any{"job_id": "job-42", "attempt": json.Number("12345678901234567890")}, ev.Metadata,
		"metadata echoes back with large numbers intact")

	ev, err = firecrawl.ParseEvent([]byte(samplePage))
	require.NoError(t, err)
	require.Equal(t, firecrawl.EventPage, ev.Type)
	require.Equal(t, []firecrawl.Page{{
		URL: "https://example.com/page/", SourceURL: "https://example.com/page",
		Title: "Page Title", Markdown: "# Welcome\n\nMain content.", StatusCode: 200,
	}}, ev.Pages)
	require.Equal(t, time.Date(2025, 9, 3, 21, 11, 26, 0, time.UTC), ev.Timestamp)

	ev, err = firecrawl.ParseEvent([]byte(sampleCompleted))
	require.NoError(t, err)
	require.Equal(t, firecrawl.EventCompleted, ev.Type)
	require.True(t, ev.Success)
	require.Empty(t, ev.Metadata)

	ev, err = firecrawl.ParseEvent([]byte(sampleFailed))
	require.NoError(t, err)
	require.Equal(t, firecrawl.EventFailed, ev.Type)
	require.False(t, ev.Success)
	require.Equal(t, "Crawl failed: site unreachable", ev.Error)
}

func TestParseEventIsLiberal(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body  string
		check func(*testing.T, *firecrawl.Event)
	}{
		"unknown fields": {`{"type":"crawl.completed","id":"c1","brandNew":{"x":[1,2]},"v":3}`, func(t *testing.T, ev *firecrawl.Event) {
			require.Equal(t, firecrawl.EventCompleted, ev.Type)
		}},
		"unknown type": {`{"type":"crawl.paused","id":"c1"}`, func(t *testing.T, ev *firecrawl.Event) {
			require.Equal(t, firecrawl.EventType("crawl.paused"), ev.Type)
			require.False(t, ev.Known())
		}},
		"no webhookId": {`{"type":"crawl.page","id":"c1"}`, func(t *testing.T, ev *firecrawl.Event) {
			require.Empty(t, ev.DeliveryID)
		}},
		"null webhookId": {`{"type":"crawl.page","id":"c1","webhookId":null}`, func(t *testing.T, ev *firecrawl.Event) {
			require.Empty(t, ev.DeliveryID)
		}},
		"no success on failed": {`{"type":"crawl.failed","id":"c1","error":"boom"}`, func(t *testing.T, ev *firecrawl.Event) {
			require.False(t, ev.Success)
		}},
		"no success on completed": {`{"type":"crawl.completed","id":"c1"}`, func(t *testing.T, ev *firecrawl.Event) {
			require.True(t, ev.Success)
		}},
		"odd optional types": {`{"type":"crawl.page","id":"c1","success":"yes","data":{"not":"a list"},"metadata":[1],"error":7,"timestamp":5}`,
			func(t *testing.T, ev *firecrawl.Event) {
				require.True(t, ev.Success)
				require.Empty(t, ev.Pages)
				require.Nil(t, ev.Metadata)
				require.Empty(t, ev.Error)
				require.True(t, ev.Timestamp.IsZero())
			}},
		"odd page fields": {`{"type":"crawl.page","id":"c1","data":[{"markdown":"m","metadata":{"title":["T1","T2"],"sourceURL":"https://a/","statusCode":"404","error":"Not Found"}}, 3, null]}`,
			func(t *testing.T, ev *firecrawl.Event) {
				require.Equal(t, []firecrawl.Page{{URL: "https://a/", SourceURL: "https://a/", Title: "T1", Markdown: "m", StatusCode: 404, Error: "Not Found"}}, ev.Pages)
			}},
	} {
		ev, err := firecrawl.ParseEvent([]byte(tc.body))
		require.NoError(t, err, name)
		tc.check(t, ev)
	}
}

func TestParseEventIsStrictAboutTypeAndID(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"missing type":        `{"id":"c1"}`,
		"empty type":          `{"type":"","id":"c1"}`,
		"blank type":          `{"type":"  ","id":"c1"}`,
		"type not a string":   `{"type":1,"id":"c1"}`,
		"missing id":          `{"type":"crawl.page"}`,
		"null id":             `{"type":"crawl.page","id":null}`,
		"id not a string":     `{"type":"crawl.page","id":["c1"]}`,
		"id with a path":      `{"type":"crawl.page","id":"../admin"}`,
		"webhookId a number":  `{"type":"crawl.page","id":"c1","webhookId":5}`,
		"webhookId too long":  `{"type":"crawl.page","id":"c1","webhookId":"` + strings.Repeat("x", 257) + `"}`,
		"not JSON":            `type=crawl.page`,
		"truncated":           `{"type":"crawl.page","id":"c1"`,
		"trailing garbage":    `{"type":"crawl.page","id":"c1"} {}`,
		"array":               `[{"type":"crawl.page","id":"c1"}]`,
		"null":                `null`,
		"empty":               ``,
		"string":              `"crawl.page"`,
		"bad escape in field": `{"type":"crawl.page","id":"c1","error":"\x"}`,
	} {
		ev, err := firecrawl.ParseEvent([]byte(body))
		require.ErrorIs(t, err, firecrawl.ErrMalformedEvent, name)
		require.Nil(t, ev, name)
	}
}

func TestParseEventSizeLimit(t *testing.T) {
	t.Parallel()
	head := []byte(`{"type":"crawl.page","id":"c1","pad":"`)
	tail := []byte(`"}`)
	atLimit := append(append(head, bytes.Repeat([]byte("a"), firecrawl.MaxEventBytes-len(head)-len(tail))...), tail...)
	require.Len(t, atLimit, firecrawl.MaxEventBytes)
	_, err := firecrawl.ParseEvent(atLimit)
	require.NoError(t, err)

	over := append(bytes.Clone(atLimit[:len(atLimit)-2]), 'a', '"', '}')
	_, err = firecrawl.ParseEvent(over)
	require.ErrorIs(t, err, firecrawl.ErrEventTooLarge)

	_, err = firecrawl.ReadBody(bytes.NewReader(over))
	require.ErrorIs(t, err, firecrawl.ErrEventTooLarge)
	got, err := firecrawl.ReadBody(bytes.NewReader(atLimit))
	require.NoError(t, err)
	require.Equal(t, atLimit, got)
}

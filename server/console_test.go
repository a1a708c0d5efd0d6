package server_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// The console's files are served at / beside the REST API: index.html, its script and
// stylesheet, with a policy that keeps them to this origin, gzipped when asked, revalidated by
// ETag, and open without an API key (the key is for the API the page then calls).
func TestConsoleFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, withAPIKeys("abcdefghijklmnop:read"))

	resp := b.send(t, http.MethodGet, "/", "")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), `<script type="module" src="app.js"></script>`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)

	resp = b.send(t, http.MethodGet, "/", "", "If-None-Match", etag)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotModified, resp.StatusCode)

	resp = b.send(t, http.MethodGet, "/app.js", "", "Accept-Encoding", "gzip")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript"), resp.Header.Get("Content-Type"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	js, err := io.ReadAll(zr)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Contains(t, string(js), "/v1/jobs/")

	code, css := b.do(t, http.MethodGet, "/style.css", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(css), ":root")

	code, _ = b.do(t, http.MethodHead, "/", "")
	require.Equal(t, http.StatusOK, code)

	require.NoError(t, testutil.ScrapeAndCompare(b.baseURL+"/metrics", strings.NewReader(httpRequestsHeader+`
pipeline_http_requests_total{code="200",method="GET",route="console"} 3
pipeline_http_requests_total{code="304",method="GET",route="console"} 1
pipeline_http_requests_total{code="200",method="HEAD",route="console"} 1
`), "pipeline_http_requests_total"))
}

// Everything that is not a console file reaches the gateway as before: the API under /v1/ (with
// its key check), other methods on /, and unknown paths with the gateway's JSON 404.
func TestConsoleLeavesTheAPIAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, withAPIKeys("abcdefghijklmnop:read"))

	code, body := b.do(t, http.MethodGet, "/v1/sources", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, 16, decodeError(t, body).Code)

	resp := b.send(t, http.MethodGet, "/v1/sources", "", "Authorization", "Bearer abcdefghijklmnop")
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	code, body = b.do(t, http.MethodGet, "/no/such/page.html", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, 5, decodeError(t, body).Code)

	code, body = b.do(t, http.MethodPost, "/", `{}`)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, 5, decodeError(t, body).Code)

	code, _ = b.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, code)
}

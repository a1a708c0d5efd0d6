package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// staticFixture is a served directory with files next to it that must never be served.
type staticFixture struct {
	root string // the served directory
}

const staticSecret = "outside the served directory"

func newStaticFixture(t *testing.T) staticFixture {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "site")
	write := func(path, content string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	write(filepath.Join(root, "index.html"), "<h1>home page</h1>")
	write(filepath.Join(root, "guide", "index.html"), "<h1>guide index</h1>")
	write(filepath.Join(root, "guide", "one.html"), "<h1>guide one</h1>")
	write(filepath.Join(root, "bare", "page.html"), "<h1>in a directory without an index</h1>")
	write(filepath.Join(root, ".git", "config"), "hidden")
	write(filepath.Join(root, ".env"), "hidden")
	write(filepath.Join(parent, "secret.txt"), staticSecret)
	require.NoError(t, os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(root, "link.txt")))
	require.NoError(t, os.Symlink(parent, filepath.Join(root, "up")))
	return staticFixture{root: root}
}

func (f staticFixture) handler(t *testing.T) http.Handler {
	t.Helper()
	r, err := os.OpenRoot(f.root)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return newStaticHandler(r.FS())
}

func staticServe(h http.Handler, method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://site.test/", nil)
	req.URL.Path = path // as the server passes it on, uncleaned
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestStaticHandlerServesFilesAndIndexes(t *testing.T) {
	t.Parallel()
	h := newStaticFixture(t).handler(t)
	for path, want := range map[string]string{
		"/":                 "home page",
		"/guide/":           "guide index",
		"/guide/one.html":   "guide one",
		"/bare/page.html":   "in a directory without an index",
		"/guide/./one.html": "guide one",
	} {
		rec := staticServe(h, http.MethodGet, path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Contains(t, rec.Body.String(), want, path)
	}
	require.Equal(t, "text/html; charset=utf-8", staticServe(h, http.MethodGet, "/guide/one.html").Header().Get("Content-Type"))

	rec := staticServe(h, http.MethodGet, "/guide")
	require.Equal(t, http.StatusMovedPermanently, rec.Code)
	require.Equal(t, "guide/", rec.Header().Get("Location"))

	rec = staticServe(h, http.MethodHead, "/")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, http.StatusMethodNotAllowed, staticServe(h, http.MethodPost, "/").Code)
}

func TestStaticHandlerRefusesWhatItMustNotServe(t *testing.T) {
	t.Parallel()
	h := newStaticFixture(t).handler(t)
	for _, path := range []string{
		"/../secret.txt", // traversal
		"/guide/../../secret.txt",
		"/link.txt",             // a link to a file outside
		"/up/secret.txt",        // a link to a directory outside
		"/bare/",                // no index.html: no listing
		"/.git/config", "/.env", // hidden
		"/missing.html",
	} {
		rec := staticServe(h, http.MethodGet, path)
		require.Equal(t, http.StatusNotFound, rec.Code, path)
		require.NotContains(t, rec.Body.String(), staticSecret, path)
		require.NotContains(t, rec.Body.String(), "page.html", path)
	}
}

func TestRunStaticServesUntilCancelled(t *testing.T) {
	t.Parallel()
	f := newStaticFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	var logw bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runStatic(ctx, f.root, "127.0.0.1:0", &logw, func(a net.Addr) { addrs <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		require.FailNow(t, "runStatic returned", "%v", err)
	case <-time.After(clientWait):
		require.FailNow(t, "runStatic did not listen")
	}

	resp, err := http.Get("http://" + addr.String() + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "home page")

	// A raw request line with .. in it, as a client that does not clean paths sends it.
	for _, target := range []string{"/../secret.txt", "/%2e%2e/secret.txt", "/guide/..%2f..%2fsecret.txt"} {
		conn, err := net.DialTimeout("tcp", addr.String(), clientWait)
		require.NoError(t, err)
		_, err = io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(clientWait)))
		raw, err := io.ReadAll(conn)
		require.NoError(t, err)
		_ = conn.Close()
		require.NotContains(t, string(raw), staticSecret, target)
		require.False(t, strings.HasPrefix(string(raw), "HTTP/1.1 200"), "%s: %s", target, raw)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(clientWait):
		require.FailNow(t, "runStatic did not stop")
	}
	require.Equal(t, "serving "+f.root+" at http://"+addr.String()+"/ (Ctrl-C stops)\n", logw.String())
}

func TestRunStaticUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f.html")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	err := runStatic(t.Context(), filepath.Join(dir, "missing"), "127.0.0.1:0", io.Discard, nil)
	require.ErrorContains(t, err, "no such file")
	err = runStatic(t.Context(), file, "127.0.0.1:0", io.Discard, nil)
	require.ErrorContains(t, err, "not a directory")
	err = runStatic(t.Context(), dir, "nonsense", io.Discard, nil)
	require.ErrorContains(t, err, "--addr nonsense")

	cmd := staticCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(nil)
	require.ErrorContains(t, cmd.ExecuteContext(t.Context()), "accepts 1 arg")
}

// The sample site the demo crawls is served as the demo serves it.
func TestStaticServesTheSampleSite(t *testing.T) {
	t.Parallel()
	r, err := os.OpenRoot(sampleSite)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	h := newStaticHandler(r.FS())
	rec := staticServe(h, http.MethodGet, "/")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Quillfield Community Garden")
	rec = staticServe(h, http.MethodGet, "/robots.txt")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Disallow: /members/")
	require.Equal(t, http.StatusNotFound, staticServe(h, http.MethodGet, "/members/").Code, "no listing")
}

package main

import (
	"bytes"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func probe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func answering(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthyAnswer(t *testing.T) {
	t.Parallel()
	srv := answering(t, http.StatusOK, `{"postgres":"ok","redis":"ok"}`)
	code, out, _ := probe(t, srv.URL+"/readyz")
	require.Equal(t, healthy, code)
	require.Contains(t, out, "200 OK")
	require.Contains(t, out, `"postgres":"ok"`, "the body is shown, so docker inspect says what was checked")
}

func TestUnhealthyAnswers(t *testing.T) {
	t.Parallel()
	down := answering(t, http.StatusServiceUnavailable, `{"postgres":"ok","redis":"dial tcp: connection refused"}`)
	code, _, errOut := probe(t, down.URL+"/readyz")
	require.Equal(t, unhealthy, code)
	require.Contains(t, errOut, "503")
	require.Contains(t, errOut, "redis", "the failing dependency is named")

	code, _, _ = probe(t, down.URL+"/elsewhere")
	require.Equal(t, unhealthy, code, "404")

	redirect := httptest.NewServer(http.RedirectHandler("/readyz", http.StatusFound))
	t.Cleanup(redirect.Close)
	code, _, errOut = probe(t, redirect.URL+"/")
	require.Equal(t, unhealthy, code, "a redirect is not a health answer")
	require.Contains(t, errOut, "302")
}

func TestNothingListening(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	code, _, errOut := probe(t, "-timeout", "2s", "http://"+addr+"/readyz")
	require.Equal(t, unhealthy, code)
	require.Contains(t, errOut, "healthcheck:")
}

func TestTLSWithCA(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	code, _, errOut := probe(t, srv.URL+"/readyz")
	require.Equal(t, unhealthy, code, "an untrusted certificate fails")
	require.Contains(t, errOut, "certificate")

	code, out, _ := probe(t, "-ca", ca, srv.URL+"/readyz")
	require.Equal(t, healthy, code)
	require.Contains(t, out, "200 OK")
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("not a certificate"), 0o600))
	for name, args := range map[string][]string{
		"no url":         nil,
		"two urls":       {"http://a/readyz", "http://b/readyz"},
		"not a url":      {"127.0.0.1:8080/readyz"},
		"other scheme":   {"ftp://127.0.0.1/readyz"},
		"unknown flag":   {"-insecure", "http://127.0.0.1/readyz"},
		"bad timeout":    {"-timeout", "0s", "http://127.0.0.1/readyz"},
		"missing ca":     {"-ca", "/nonexistent/ca.pem", "https://127.0.0.1/readyz"},
		"ca without pem": {"-ca", empty, "https://127.0.0.1/readyz"},
	} {
		code, out, errOut := probe(t, args...)
		require.Equal(t, unhealthy, code, name)
		require.Empty(t, out, name)
		require.NotEmpty(t, errOut, name)
	}
}

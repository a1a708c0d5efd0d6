package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/servertest"
)

// consoleScreenshots is where the console tests leave a screenshot of each page (CI keeps them).
const consoleScreenshots = "../.build/console-screenshots"

// TestConsole drives the web console in headless Chromium against a real server and workers:
// upload a folder, watch the progress bar reach 100% without a reload, open the job, see a
// failed document's error, retry it, search, crawl and refresh a web site, and delete the source
// (web/test/console.test.mjs).
// One document fails every try of its first job (the embedder answers 503 for it exactly that
// often), so the retry succeeds. Another document is held in the embedder until the browser has
// shown the job part done (the script prints UNBLOCK), so the bar is seen moving, not only full.
// A third, uploaded later, is held until the test ends, so its job is running when the browser
// cancels it.
func TestConsole(t *testing.T) {
	t.Parallel()
	script := consoleTools(t)
	stuck := &holdEmbedder{word: "HOLD-FOR-CANCEL", release: make(chan struct{})}
	b := start(t, options{workers: 1, app: func(a *app.App) {
		stuck.Embedder = a.Embedder
		a.Embedder = stuck
	}})
	t.Cleanup(func() { close(stuck.release) })
	unblock := make(chan struct{})
	b.embedder.mu.Lock()
	b.embedder.transient["CONSOLE-FLAKY"] = b.cfg.MaxRetries + 1
	b.embedder.block = unblock
	b.embedder.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { close(unblock) }) }
	t.Cleanup(release)

	folder := filepath.Join(t.TempDir(), "handbook")
	files := map[string]string{
		"install.md":           "# Installing\n\n## From packages\n\nThe zephyrine installer unpacks the service and starts it.\n",
		"guide/usage.md":       "# Usage\n\nCall the search endpoint with a query.\n",
		"guide/flaky.md":       "# Flaky\n\nThis page hits CONSOLE-FLAKY on its first job.\n",
		"guide/slow.md":        "# Slow\n\nThis page waits in the embedder: BLOCK.\n",
		"notes/faq.txt":        "Questions and answers about running the pipeline.\n",
		"notes/reference.html": "<html><head><title>Reference</title></head><body><h1>Reference</h1><p>Every setting.</p></body></html>\n",
		"notes/image.png":      "not a document: the console leaves it out",
		".hidden/secret.md":    "# Hidden\n\nLeft out.\n",
	}
	for name, text := range files {
		p := filepath.Join(folder, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}

	web := newSite(t)
	web.set("/", page(1, "The home page of the crawled site."))
	web.set("/docs", page(2, "A page the crawl finds by its link."))

	runConsole(t, script, b.httpAddr, "flow", func(line string) string {
		if line == "UNBLOCK" {
			release()
		}
		return ""
	},
		"CONSOLE_FOLDER="+folder,
		"CONSOLE_SOURCE_NAME=handbook",
		"CONSOLE_FAILED_URI=guide/flaky.md",
		"CONSOLE_QUERY=zephyrine installer",
		"CONSOLE_QUERY_URI=install.md",
		"CONSOLE_SITE_URL="+web.srv.URL+"/",
	)
}

// holdEmbedder holds every text containing word until release is closed (or the call's context
// ends).
type holdEmbedder struct {
	embed.Embedder
	word    string
	release chan struct{}
}

func (h *holdEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for _, t := range texts {
		if strings.Contains(t, h.word) {
			select {
			case <-h.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return h.Embedder.Embed(ctx, texts)
}

// TestConsoleKeysAndOutage runs the console against a server with API keys and no workers: it
// says it is unauthorized until a key is entered, says permission denied for a read-only key's
// write, follows a pending job, says the server is unreachable while it is stopped (the script
// asks for STOP) and follows the job again after it is back (START); a cancel made through the
// API (CANCEL <job id>) then reaches the page on the reopened stream.
func TestConsoleKeysAndOutage(t *testing.T) {
	t.Parallel()
	script := consoleTools(t)
	const readKey, writeKey = "console-read-key-0123456789", "console-write-key-0123456789"
	srv := servertest.Start(t, servertest.Options{Config: func(c *config.Config) {
		c.APIKeys = []string{readKey + ":read", writeKey}
	}})
	runConsole(t, script, srv.HTTPAddr, "outage", func(line string) string {
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "STOP":
			srv.Stop()
			return "STOPPED"
		case "START":
			srv.Restart()
			return "STARTED"
		case "CANCEL":
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.HTTPAddr+"/v1/jobs/"+arg+":cancel", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+writeKey)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			return "CANCELLED"
		}
		return ""
	}, "CONSOLE_READ_KEY="+readKey, "CONSOLE_WRITE_KEY="+writeKey)
}

// consoleTools returns the browser test's script, or skips (fails under PIPELINE_REQUIRE_TOOLS=1,
// as `make test` sets) when node, web/node_modules or Chromium is missing.
func consoleTools(t *testing.T) string {
	t.Helper()
	web, err := filepath.Abs("../web")
	require.NoError(t, err)
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(web, "node_modules", "playwright-core"))
	_, chromeErr := os.Stat(chromium())
	if nodeErr != nil || modErr != nil || chromeErr != nil {
		msg := "the console test needs node, web/node_modules (make tools) and Chromium (apt-get install chromium)"
		if os.Getenv("PIPELINE_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s: node: %v, modules: %v, chromium: %v", msg, nodeErr, modErr, chromeErr)
		}
		t.Skipf("%s; make test sets PIPELINE_REQUIRE_TOOLS=1 and fails instead", msg)
	}
	return filepath.Join(web, "test", "console.test.mjs")
}

func chromium() string {
	if p := os.Getenv("PIPELINE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// runConsole runs the browser test in one mode against the server at httpAddr. onLine, when
// set, sees each line the script prints as it comes; a reply it returns goes to the script's
// standard input as one line (the script waits for it).
func runConsole(t *testing.T, script, httpAddr, mode string, onLine func(string) string, env ...string) {
	t.Helper()
	shots, err := filepath.Abs(filepath.Join(consoleScreenshots, mode))
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(shots))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(),
		"CONSOLE_URL=http://"+httpAddr,
		"CONSOLE_MODE="+mode,
		"CONSOLE_SCREENSHOTS="+shots,
		"CHROMIUM="+chromium(),
	)
	cmd.Env = append(cmd.Env, env...)
	var out, stderr bytes.Buffer // stderr is written by exec's own goroutine
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if onLine == nil {
			continue
		}
		if reply := onLine(lines.Text()); reply != "" {
			_, _ = io.WriteString(stdin, reply+"\n")
		}
	}
	_ = stdin.Close()
	err = cmd.Wait()
	t.Logf("console test (%s), screenshots in %s:\n%s%s", mode, shots, out.String(), stderr.String())
	require.NoError(t, err, "the console's browser test failed")
}

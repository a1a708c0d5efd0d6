package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/internal/redistest"
)

// TestConsoleAgainstPipelineDev runs the real binary as `pipeline dev` (its own schema, Redis
// prefix and data directory) and drives the console it serves in headless Chromium: the page
// loads from the binary's embedded build, a folder uploaded through it is processed to 100%
// with the bar following the job live, and a search finds it (web/test/console.test.mjs, mode
// "dev"). TestConsole covers the rest of the console against the same components with faults.
func TestConsoleAgainstPipelineDev(t *testing.T) {
	t.Parallel()
	script := consoleTools(t)
	bin := filepath.Join(t.TempDir(), "pipeline")
	build := exec.Command("go", "build", "-o", bin, "../cmd/pipeline")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	_, dbURL := dbtest.NewWithURL(t)
	_, prefix := redistest.New(t)
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	dev := exec.CommandContext(ctx, bin, "dev")
	dev.Env = append(os.Environ(),
		"PIPELINE_DATABASE_URL="+dbURL,
		"PIPELINE_REDIS_URL="+redistest.URL(),
		"PIPELINE_REDIS_PREFIX="+prefix,
		"PIPELINE_DATA_DIR="+t.TempDir(),
		"PIPELINE_GRPC_ADDR="+freeAddr(t),
		"PIPELINE_HTTP_ADDR="+httpAddr,
	)
	logs := &logtest.Buffer{}
	dev.Stdout, dev.Stderr = logs, logs
	dev.Cancel = func() error { return dev.Process.Signal(os.Interrupt) }
	dev.WaitDelay = 30 * time.Second
	require.NoError(t, dev.Start())
	t.Cleanup(func() {
		cancel()
		_ = dev.Wait()
		if t.Failed() {
			t.Logf("pipeline dev's log:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "pipeline dev became ready")

	folder := filepath.Join(t.TempDir(), "field-notes")
	for name, text := range map[string]string{
		"kestrel.md":      "# Kestrels\n\nThe kestrel hovers over the verge before it drops on a vole.\n",
		"notes/heron.txt": "Herons stand in the shallows for a long time.\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(folder, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(folder, name), []byte(text), 0o644))
	}
	runConsole(t, script, httpAddr, "dev", nil,
		"CONSOLE_FOLDER="+folder,
		"CONSOLE_SOURCE_NAME=field-notes",
		"CONSOLE_QUERY=kestrel hovers over the verge",
		"CONSOLE_QUERY_URI=kestrel.md",
	)
}

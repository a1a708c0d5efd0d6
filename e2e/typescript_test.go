package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTypeScriptClient runs the generated TypeScript client's live test (gen/ts/test, node:test)
// against a real server: ingest, WatchJob to COMPLETED, search, NotFound and InvalidArgument.
// It needs node and gen/ts/node_modules (`make tools`); without them it skips, unless
// PIPELINE_REQUIRE_TOOLS=1 (set by `make test`, so CI cannot skip it silently).
func TestTypeScriptClient(t *testing.T) {
	t.Parallel()
	pkg, err := filepath.Abs("../gen/ts")
	require.NoError(t, err)
	node, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(pkg, "node_modules", "@connectrpc", "connect-node"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("PIPELINE_REQUIRE_TOOLS") == "1" {
			t.Fatalf("node or gen/ts/node_modules missing (run make tools): node: %v, modules: %v", nodeErr, modErr)
		}
		t.Skip("node or gen/ts/node_modules missing; run make tools (make test sets PIPELINE_REQUIRE_TOOLS=1 and fails instead)")
	}

	// Compile the client and its test next to node_modules, so that the compiled files resolve
	// the client's dependencies.
	out, err := os.MkdirTemp(pkg, ".live-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(out) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tsc := exec.CommandContext(ctx, node, filepath.Join(pkg, "node_modules", "typescript", "bin", "tsc"),
		"-p", filepath.Join(pkg, "tsconfig.test.json"), "--outDir", out)
	tsc.Dir = pkg
	if b, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, b)
	}

	b := start(t, options{workers: 1})
	run := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join(out, "test", "live.test.js"))
	run.Dir = pkg
	run.Env = append(os.Environ(), "PIPELINE_TEST_URL=http://"+b.grpcAddr)
	output, err := run.CombinedOutput()
	t.Logf("node --test:\n%s", output)
	require.NoError(t, err, "the TypeScript live test failed")
}

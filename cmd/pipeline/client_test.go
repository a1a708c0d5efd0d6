package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/servertest"
	"github.com/pipeline-dev/pipeline/server"
)

// clientWait bounds every wait in the client tests, so a hang fails the test quickly.
const clientWait = 10 * time.Second

// clientBundle is a running server on its own Postgres schema and Redis prefix, as the client
// commands see it, plus direct access to its collaborators to check results and drive jobs.
type clientBundle struct {
	addr    string // gRPC address for --server
	srv     *servertest.Server
	deps    server.Deps
	content pipelinev1.ContentServiceClient
	jobs    pipelinev1.JobServiceClient
}

// setupServer starts a server for one test; opts adjust its Config. Only the server runs: no
// worker consumes the queue, so jobs stay PENDING until a test drives them through deps.Jobs.
// It stops when the test ends.
func setupServer(t *testing.T, opts ...func(*config.Config)) *clientBundle {
	t.Helper()
	return setupServerDeps(t, nil, opts...)
}

// setupServerDeps is setupServer with a hook that may change the server's dependencies.
func setupServerDeps(t *testing.T, mutate func(*server.Deps), opts ...func(*config.Config)) *clientBundle {
	t.Helper()
	return startBundle(t, servertest.Options{Deps: mutate, Config: func(c *config.Config) {
		for _, o := range opts {
			o(c)
		}
	}})
}

// startBundle starts a server with opts and connects plain gRPC stubs to it.
func startBundle(t *testing.T, opts servertest.Options) *clientBundle {
	t.Helper()
	srv := servertest.Start(t, opts)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &clientBundle{
		addr:    srv.Addr,
		srv:     srv,
		deps:    srv.Deps,
		content: pipelinev1.NewContentServiceClient(conn),
		jobs:    pipelinev1.NewJobServiceClient(conn),
	}
}

// callCtx is a context for one call in a test.
func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientWait)
	t.Cleanup(cancel)
	return ctx
}

// cmdResult is what one run of a client command produced.
type cmdResult struct {
	stdout, stderr string
	err            error
}

// runClient runs a client command (ingestCmd or searchCmd) against b with args.
func (b *clientBundle) runClient(t *testing.T, cmd *cobra.Command, args ...string) cmdResult {
	t.Helper()
	var out, errOut bytes.Buffer
	err := b.execute(t, cmd, &out, &errOut, args...)
	return cmdResult{stdout: out.String(), stderr: errOut.String(), err: err}
}

func (b *clientBundle) execute(t *testing.T, cmd *cobra.Command, out, errOut io.Writer, args ...string) error {
	t.Helper()
	return b.executeCtx(callCtx(t), cmd, out, errOut, args...)
}

// executeCtx is execute under ctx, for a test that interrupts the command.
func (b *clientBundle) executeCtx(ctx context.Context, cmd *cobra.Command, out, errOut io.Writer, args ...string) error {
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(append([]string{"--server", b.addr}, args...))
	markUsageErrors(cmd)
	return cmd.ExecuteContext(ctx)
}

// lineSink collects what a command writes, line by line, for a test that reacts to output
// while the command still runs. Writes never block.
type lineSink struct {
	mu      sync.Mutex
	partial []byte
	lines   chan string
}

func newLineSink() *lineSink { return &lineSink{lines: make(chan string, 4096)} }

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case s.lines <- string(s.partial[:i]):
		default:
			return 0, errors.New("lineSink: too many unread lines")
		}
		s.partial = s.partial[i+1:]
	}
}

// next returns the next complete line, failing the test if none comes in time.
func (s *lineSink) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(clientWait):
		require.FailNow(t, "no output line within "+clientWait.String())
		return ""
	}
}

// rest returns the lines not read yet; call it after the command returned.
func (s *lineSink) rest() []string {
	var out []string
	for {
		select {
		case l := <-s.lines:
			out = append(out, l)
		default:
			return out
		}
	}
}

func TestClientFlagsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "yaml"}, "--output"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--server", " "}, "--server"},
	} {
		cmd := searchCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetArgs(append(tc.args, "query"))
		err := cmd.ExecuteContext(callCtx(t))
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
		require.Equal(t, exitUsage, exitCode(err))
	}
}

func TestAPIKeyIsSentAndNeverShown(t *testing.T) {
	t.Parallel()
	const key = "0123456789abcdef-test-key"
	b := setupServer(t, func(c *config.Config) { c.APIKeys = []string{key} })

	res := b.runClient(t, ingestCmd(), "../../examples/demo-corpus", "--source", "keyed", "--wait=false")
	require.ErrorContains(t, res.err, "PIPELINE_API_KEY")
	require.Equal(t, exitAuth, exitCode(res.err))

	res = b.runClient(t, ingestCmd(), "../../examples/demo-corpus", "--source", "keyed", "--wait=false", "--api-key", key)
	require.NoError(t, res.err)
	require.NotContains(t, res.stdout+res.stderr, key)

	// Help never shows a key, even one taken from the environment.
	cmd := &cobra.Command{Use: "x"}
	env := map[string]string{envAPIKey: key, envServer: "10.0.0.1:9999"}
	s := registerClientFlagsEnv(cmd, func(k string) string { return env[k] })
	require.Equal(t, key, s.APIKey, "the environment sets the key")
	require.Equal(t, "10.0.0.1:9999", s.Server)
	require.NotContains(t, cmd.Flags().FlagUsages(), key)
	require.Contains(t, cmd.Flags().FlagUsages(), "10.0.0.1:9999")
}

func TestUnreachableServerSaysWhere(t *testing.T) {
	t.Parallel()
	cmd := searchCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetArgs([]string{"--server", "127.0.0.1:1", "--source", "docs", "anything"})
	err := cmd.ExecuteContext(callCtx(t))
	require.ErrorContains(t, err, "cannot reach the server at 127.0.0.1:1")
	require.ErrorContains(t, err, "PIPELINE_SERVER")
	require.Equal(t, exitUnavailable, exitCode(err))
}

func TestExitCodeOfErrors(t *testing.T) {
	t.Parallel()
	require.Equal(t, exitOK, exitCode(nil))
	require.Equal(t, exitError, exitCode(errors.New("boom")))
	wrapped := fmt.Errorf("ingest: %w", &exitCodeError{code: exitDocErrors, err: errors.New("2 failed")})
	require.Equal(t, exitDocErrors, exitCode(wrapped))
	require.True(t, strings.Contains(wrapped.Error(), "2 failed"))
}

package client_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/client"
	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/servertest"
)

// wait bounds every wait in these tests.
const wait = 20 * time.Second

func tctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	t.Cleanup(cancel)
	return ctx
}

// fastRetry retries for long enough that a server started by the test is found, quickly.
var fastRetry = client.RetryPolicy{MaxAttempts: 200, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}

func dial(t *testing.T, addr string, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(tctx(t), addr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ingest makes an upload source with n documents through c and returns the PENDING job and the
// document ids.
func ingest(t *testing.T, c *client.Client, n int) (uuid.UUID, []uuid.UUID) {
	t.Helper()
	src, err := c.Content().CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "docs"})
	require.NoError(t, err)
	req := &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSource().GetSourceId()}
	for range n {
		req.Documents = append(req.Documents, &pipelinev1.DocumentInput{
			Uri: uuid.NewString() + ".md", ContentType: "text/markdown", Content: "# Doc\n\ntext " + uuid.NewString(),
		})
	}
	resp, err := c.Content().IngestDocuments(tctx(t), req)
	require.NoError(t, err)
	var docs []uuid.UUID
	for _, d := range resp.GetDocuments() {
		docs = append(docs, uuid.MustParse(d.GetDocumentId()))
	}
	return uuid.MustParse(resp.GetJob().GetJobId()), docs
}

// watchResult is what a WatchJob run in the background ended with.
type watchResult struct {
	job *pipelinev1.Job
	err error
}

// watcher runs WatchJob in the background and records every update and reconnect.
type watcher struct {
	mu         sync.Mutex
	updates    []*pipelinev1.Job
	reconnects int
	seen       chan *pipelinev1.Job // every update, for the test to wait on
	done       chan watchResult
}

func startWatch(t *testing.T, c *client.Client, jobID uuid.UUID) *watcher {
	t.Helper()
	w := &watcher{seen: make(chan *pipelinev1.Job, 100), done: make(chan watchResult, 1)}
	go func() {
		job, err := c.WatchJob(tctx(t), jobID.String(), client.WatchOptions{
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			OnUpdate: func(j *pipelinev1.Job) {
				w.mu.Lock()
				w.updates = append(w.updates, j)
				w.mu.Unlock()
				w.seen <- j
			},
			OnReconnect: func(error, time.Duration) {
				w.mu.Lock()
				w.reconnects++
				w.mu.Unlock()
			},
		})
		w.done <- watchResult{job, err}
	}()
	return w
}

// waitFor reads updates until one has the status.
func (w *watcher) waitFor(t *testing.T, st pipelinev1.JobStatus) {
	t.Helper()
	for {
		select {
		case j := <-w.seen:
			if j.GetStatus() == st {
				return
			}
		case <-time.After(wait):
			require.FailNow(t, "no update with status "+st.String())
		}
	}
}

// waitForProcessed reads updates until one shows n documents processed.
func (w *watcher) waitForProcessed(t *testing.T, n int64) {
	t.Helper()
	for {
		select {
		case j := <-w.seen:
			if j.GetProcessing().GetProcessedCount() == n {
				return
			}
		case <-time.After(wait):
			require.FailNow(t, "no update with the documents processed")
		}
	}
}

func (w *watcher) result(t *testing.T) watchResult {
	t.Helper()
	select {
	case r := <-w.done:
		return r
	case <-time.After(wait):
		require.FailNow(t, "WatchJob did not return")
		return watchResult{}
	}
}

// checkUpdates checks that versions strictly increase and that exactly one update, the last,
// is terminal with the wanted status.
func (w *watcher) checkUpdates(t *testing.T, want pipelinev1.JobStatus) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotEmpty(t, w.updates)
	terminal := 0
	for i, j := range w.updates {
		if i > 0 {
			require.Greater(t, j.GetVersion(), w.updates[i-1].GetVersion(), "versions must strictly increase")
		}
		if client.Terminal(j) {
			terminal++
		}
	}
	require.Equal(t, 1, terminal, "the terminal state must be passed exactly once")
	require.Equal(t, want, w.updates[len(w.updates)-1].GetStatus())
}

func TestWatchJobSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		whileDown bool // the job ends while the server is down, else after it is back
		finish    func(ctx context.Context, m *jobs.Manager, id uuid.UUID, docs []uuid.UUID) error
		want      pipelinev1.JobStatus
	}{
		{
			name: "completed while the server is down", whileDown: true, want: pipelinev1.JobStatus_JOB_STATUS_COMPLETED,
			finish: func(ctx context.Context, m *jobs.Manager, id uuid.UUID, docs []uuid.UUID) error {
				var rs []jobs.DocumentResultUpdate
				for _, d := range docs {
					rs = append(rs, jobs.DocumentResultUpdate{DocumentID: d, Status: jobs.DocSucceeded, ChunkCount: 1, Attempts: 1})
				}
				if _, err := m.RecordResults(ctx, jobs.RecordParams{JobID: id, Results: rs}); err != nil {
					return err
				}
				_, err := m.Complete(ctx, id)
				return err
			},
		},
		{
			name: "failed after the server is back", want: pipelinev1.JobStatus_JOB_STATUS_FAILED,
			finish: func(ctx context.Context, m *jobs.Manager, id uuid.UUID, _ []uuid.UUID) error {
				_, err := m.Fail(ctx, id, "embedder refused the key")
				return err
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, servertest.Options{})
			c := dial(t, srv.Addr, client.Options{Retry: fastRetry})
			id, docs := ingest(t, c, 3)

			w := startWatch(t, c, id)
			w.waitFor(t, pipelinev1.JobStatus_JOB_STATUS_PENDING)
			_, err := srv.Deps.Jobs.Start(tctx(t), id)
			require.NoError(t, err)
			w.waitFor(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS)

			srv.Stop() // the stream ends with Unavailable; reconnects find nobody listening
			if tc.whileDown {
				require.NoError(t, tc.finish(tctx(t), srv.Deps.Jobs, id, docs))
			}
			srv.Restart()
			if !tc.whileDown {
				// A change seen after the restart proves the new stream is live; its first
				// message repeated the state seen before, which must not be passed on again.
				_, err := srv.Deps.Jobs.RecordResults(tctx(t), jobs.RecordParams{JobID: id, Results: []jobs.DocumentResultUpdate{
					{DocumentID: docs[0], Status: jobs.DocSucceeded, ChunkCount: 1, Attempts: 1},
				}})
				require.NoError(t, err)
				w.waitForProcessed(t, 1)
				require.NoError(t, tc.finish(tctx(t), srv.Deps.Jobs, id, docs))
			}

			r := w.result(t)
			require.NoError(t, r.err)
			require.Equal(t, tc.want, r.job.GetStatus())
			w.checkUpdates(t, tc.want)
			w.mu.Lock()
			require.Positive(t, w.reconnects, "the watch must have reconnected")
			w.mu.Unlock()
		})
	}
}

func TestWatchJobEndsOnNotFound(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c := dial(t, srv.Addr, client.Options{})
	_, err := c.WatchJob(tctx(t), uuid.NewString(), client.WatchOptions{})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

func TestRetriesUnavailableUntilTheServerIsUp(t *testing.T) {
	t.Parallel()
	addr := servertest.FreeAddr(t)
	var retries atomic.Int32
	retried := make(chan string, 1000)
	policy := fastRetry
	policy.OnRetry = func(method string, _ int, err error) {
		assert.Equal(t, codes.Unavailable, status.Code(err)) // may run off the test goroutine
		retries.Add(1)
		retried <- method
	}
	c := dial(t, addr, client.Options{Retry: policy})

	// A read, and a call that is not safe to repeat: both are retried, since nothing reached a
	// server; the create happens once.
	type result struct {
		err error
	}
	listDone, createDone := make(chan result, 1), make(chan result, 1)
	go func() {
		_, err := c.Content().ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
		listDone <- result{err}
	}()
	go func() {
		_, err := c.Content().CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "late"})
		createDone <- result{err}
	}()
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case m := <-retried:
			seen[m] = true
		case <-time.After(wait):
			require.FailNow(t, "no retries", "%v", seen)
		}
	}
	require.True(t, seen[pipelinev1.ContentService_CreateSource_FullMethodName])

	srv := servertest.Start(t, servertest.Options{Config: func(c *config.Config) { c.GRPCAddr = addr }})
	for _, ch := range []chan result{listDone, createDone} {
		select {
		case r := <-ch:
			require.NoError(t, r.err)
		case <-time.After(wait):
			require.FailNow(t, "call did not succeed after the server started")
		}
	}
	require.GreaterOrEqual(t, retries.Load(), int32(2))
	list, _, err := srv.Deps.Content.ListSources(tctx(t), &content.ListSourcesParams{PageSize: 100})
	require.NoError(t, err)
	require.Len(t, list, 1, "the create must have happened exactly once")
}

// flakyContent is a ContentService whose ListSources is unavailable for the first failures calls
// and whose IngestDocuments always is, counting calls. It stands for a server that took a call
// and then could not answer it.
type flakyContent struct {
	pipelinev1.UnimplementedContentServiceServer
	failures     int32
	listCalls    atomic.Int32
	ingestCalls  atomic.Int32
	invalidCalls atomic.Int32
}

func (f *flakyContent) ListSources(context.Context, *pipelinev1.ListSourcesRequest) (*pipelinev1.ListSourcesResponse, error) {
	if f.listCalls.Add(1) <= f.failures {
		return nil, status.Error(codes.Unavailable, "try again")
	}
	return &pipelinev1.ListSourcesResponse{}, nil
}

func (f *flakyContent) IngestDocuments(context.Context, *pipelinev1.IngestDocumentsRequest) (*pipelinev1.IngestDocumentsResponse, error) {
	f.ingestCalls.Add(1)
	return nil, status.Error(codes.Unavailable, "stored, then the connection broke")
}

func (f *flakyContent) GetSource(context.Context, *pipelinev1.GetSourceRequest) (*pipelinev1.GetSourceResponse, error) {
	f.invalidCalls.Add(1)
	return nil, status.Error(codes.InvalidArgument, "source_id: not a UUID")
}

func TestRetryOnlyWhatIsSafe(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	fake := &flakyContent{failures: 2}
	pipelinev1.RegisterContentServiceServer(gs, fake)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	c := dial(t, lis.Addr().String(), client.Options{Retry: fastRetry})

	_, err = c.Content().ListSources(tctx(t), &pipelinev1.ListSourcesRequest{})
	require.NoError(t, err, "a read is retried on Unavailable until it succeeds")
	require.Equal(t, int32(3), fake.listCalls.Load())

	_, err = c.Content().IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: uuid.NewString()})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, int32(1), fake.ingestCalls.Load(), "an upload the server received is never sent again")

	_, err = c.Content().GetSource(tctx(t), &pipelinev1.GetSourceRequest{SourceId: "x"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, int32(1), fake.invalidCalls.Load())
}

func TestNoRetryOnInvalidArgument(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	var attempts atomic.Int32
	count := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts.Add(1)
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	c := dial(t, srv.Addr, client.Options{Retry: fastRetry, DialOptions: []grpc.DialOption{count}})
	_, err := c.Jobs().GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: "not-a-uuid"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "job_id")
	require.Equal(t, int32(1), attempts.Load())

	_, err = c.Jobs().GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: uuid.NewString()})
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, int32(2), attempts.Load())
}

func TestRetriesEndAtTheLastAttempt(t *testing.T) {
	t.Parallel()
	var retries atomic.Int32
	c := dial(t, servertest.FreeAddr(t), client.Options{Retry: client.RetryPolicy{
		MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		OnRetry: func(string, int, error) { retries.Add(1) },
	}})
	_, err := c.Jobs().ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, int32(2), retries.Load())
}

func TestAPIKeyIsSent(t *testing.T) {
	t.Parallel()
	const key = "client-test-key-0123456789"
	srv := servertest.Start(t, servertest.Options{Config: func(c *config.Config) { c.APIKeys = []string{key + ":read"} }})

	_, err := dial(t, srv.Addr, client.Options{}).Jobs().ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	c := dial(t, srv.Addr, client.Options{APIKey: key})
	_, err = c.Jobs().ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.NoError(t, err)
	_, err = c.Content().CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "x"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a read key cannot write")
}

func TestKeyNeverGoesOverPlaintextToAnotherMachine(t *testing.T) {
	t.Parallel()
	// Dial refuses before making a connection, so no traffic leaves the machine.
	for _, addr := range []string{"192.0.2.10:9090", "pipeline.example:9090", "dns:///pipeline.example:9090"} {
		_, err := client.Dial(tctx(t), addr, client.Options{APIKey: "k"})
		require.ErrorIs(t, err, client.ErrInsecureKey, addr)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9090", true}, {"127.9.9.9:1", true}, {"localhost:9090", true}, {"LOCALHOST:1", true},
		{"[::1]:9090", true}, {"dns:///localhost:9090", true}, {"passthrough:///127.0.0.1:9090", true},
		{"unix:///run/pipeline.sock", true},
		{"10.0.0.1:9090", false}, {"[2001:db8::1]:9090", false}, {"example.com:443", false}, {"localhost.example:1", false},
	} {
		require.Equal(t, tc.want, client.IsLoopback(tc.addr), tc.addr)
	}
	// With TLS, or when allowed, the key may go anywhere; nothing is dialled until a call.
	c, err := client.Dial(tctx(t), "192.0.2.10:9090", client.Options{APIKey: "k", TLS: true})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	c, err = client.Dial(tctx(t), "192.0.2.10:9090", client.Options{APIKey: "k", AllowInsecureKey: true})
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

func TestTLSWithCAFileAndServerName(t *testing.T) {
	t.Parallel()
	certFile, keyFile := servertest.SelfSignedCert(t, "pipeline.test")
	const key = "client-test-key-0123456789"
	srv := servertest.Start(t, servertest.Options{Config: func(c *config.Config) {
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		c.APIKeys = []string{key}
	}})
	c := dial(t, srv.Addr, client.Options{APIKey: key, CAFile: certFile, ServerName: "pipeline.test", Retry: client.RetryPolicy{MaxAttempts: 1}})
	_, err := c.Jobs().ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.NoError(t, err)

	// The certificate is not valid for 127.0.0.1.
	c = dial(t, srv.Addr, client.Options{APIKey: key, CAFile: certFile, Retry: client.RetryPolicy{MaxAttempts: 1}})
	_, err = c.Jobs().ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, err.Error(), "certificate")

	_, err = client.Dial(tctx(t), srv.Addr, client.Options{CAFile: keyFile})
	require.ErrorContains(t, err, "no PEM certificate")
}

func TestBlockWaitsForTheConnection(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Options{})
	c, err := client.Dial(tctx(t), srv.Addr, client.Options{Block: true})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = client.Dial(ctx, servertest.FreeAddr(t), client.Options{Block: true})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/server"
)

// waitTimeout bounds every wait in these tests: long enough for a loaded CI machine running
// -race, short enough that a hang fails the test instead of the package timeout.
const waitTimeout = 10 * time.Second

// testBundle is a running server on its own Postgres schema and Redis prefix, with clients.
type testBundle struct {
	cfg     config.Config
	deps    server.Deps
	pool    *pgxpool.Pool // the test's own pool on the same schema, for direct checks
	conn    *grpc.ClientConn
	jobs    pipelinev1.JobServiceClient
	content pipelinev1.ContentServiceClient
	search  pipelinev1.SearchServiceClient
	system  pipelinev1.SystemServiceClient
	health  healthpb.HealthClient
	baseURL string // http://host:port of the REST gateway
	http    *http.Client

	// Jobs and Content are the server's own collaborators, used to drive jobs as a worker would.
	Jobs    *jobs.Manager
	Content content.Store
	// app is the built service, for tests that run its workers (app.RunWorkers).
	app *app.App

	stopOnce sync.Once
	stopErr  error
	cancel   context.CancelFunc
	runErr   chan error
}

// setup starts a server; opts adjust its Config before it is built.
func setup(t *testing.T, opts ...func(*config.Config)) *testBundle {
	t.Helper()
	return setupDeps(t, nil, opts...)
}

// setupDeps is setup with a hook that may replace the server's dependencies before it starts.
func setupDeps(t *testing.T, mutate func(*server.Deps), opts ...func(*config.Config)) *testBundle {
	t.Helper()
	pool, dbURL := dbtest.NewWithURL(t)
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { cleanQueueKeys(rdb, prefix) })

	cfg := config.Default()
	cfg.DatabaseURL = dbURL
	cfg.RedisURL = redistest.URL()
	cfg.RedisPrefix = prefix
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Migrate = false // dbtest has migrated the schema
	cfg.WatchPollInterval = 200 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.DataDir = t.TempDir()
	for _, o := range opts {
		o(&cfg)
	}
	// GRPCAddr and HTTPAddr are equal ("127.0.0.1:0") on purpose; Validate would refuse that,
	// so check it with distinct placeholders to catch other mistakes in a test's options.
	vcfg := cfg
	vcfg.HTTPAddr = "127.0.0.1:1"
	require.NoError(t, vcfg.Validate())

	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	a, err := app.Build(ctx, cfg, log, app.RoleServer)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) }) // runs after the server has stopped (cleanups are LIFO)
	deps := a.ServerDeps()

	if mutate != nil {
		mutate(&deps)
	}
	srv, err := server.New(cfg, deps)
	require.NoError(t, err)

	b := &testBundle{cfg: cfg, deps: deps, pool: pool, Jobs: deps.Jobs, Content: deps.Content, app: a, runErr: make(chan error, 1)}
	runCtx, runCancel := context.WithCancel(context.Background())
	b.cancel = runCancel
	crawlsDone := make(chan struct{})
	go func() { defer close(crawlsDone); a.Crawls.Run(runCtx) }()
	t.Cleanup(func() { <-crawlsDone })
	go func() { b.runErr <- srv.Run(runCtx) }()
	t.Cleanup(func() { require.NoError(t, b.stop(), "Run must return nil on graceful shutdown") })

	addrCtx, addrCancel := context.WithTimeout(context.Background(), waitTimeout)
	defer addrCancel()
	addrs := make(chan [2]string, 1)
	go func() {
		g, h, err := srv.Addrs(addrCtx)
		if err == nil {
			addrs <- [2]string{g, h}
		}
	}()
	var grpcAddr, httpAddr string
	select {
	case a := <-addrs:
		grpcAddr, httpAddr = a[0], a[1]
	case err := <-b.runErr:
		b.runErr <- err // let stop see it too
		require.FailNow(t, "server.Run returned before listening", "%v", err)
	case <-addrCtx.Done():
		require.FailNow(t, "server did not start listening")
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	b.conn = conn
	b.jobs = pipelinev1.NewJobServiceClient(conn)
	b.content = pipelinev1.NewContentServiceClient(conn)
	b.search = pipelinev1.NewSearchServiceClient(conn)
	b.system = pipelinev1.NewSystemServiceClient(conn)
	b.health = healthpb.NewHealthClient(conn)
	b.baseURL = "http://" + httpAddr
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	b.http = &http.Client{Transport: tr, Timeout: waitTimeout}
	return b
}

// stop cancels the server's context and waits for Run; it returns Run's error. Safe to call twice.
func (b *testBundle) stop() error {
	b.stopOnce.Do(func() {
		b.cancel()
		select {
		case b.stopErr = <-b.runErr:
		case <-time.After(b.cfg.ShutdownTimeout + waitTimeout):
			b.stopErr = fmt.Errorf("Run did not return within %s of cancel", b.cfg.ShutdownTimeout+waitTimeout)
		}
	})
	return b.stopErr
}

// withAPIKeys turns authentication on.
func withAPIKeys(keys ...string) func(*config.Config) {
	return func(c *config.Config) { c.APIKeys = keys }
}

// tctx returns a context for one call, bounded by waitTimeout and cancelled when the test ends.
func tctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// --- fixtures

// createSource makes an upload source over gRPC.
func (b *testBundle) createSource(t *testing.T) *pipelinev1.Source {
	t.Helper()
	resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Name: "docs"})
	require.NoError(t, err)
	return resp.GetSource()
}

// docInputs returns n distinct documents.
func docInputs(n int) []*pipelinev1.DocumentInput {
	out := make([]*pipelinev1.DocumentInput, n)
	for i := range out {
		out[i] = &pipelinev1.DocumentInput{
			Uri:         fmt.Sprintf("doc-%d.md", i),
			Title:       fmt.Sprintf("Document %d", i),
			ContentType: "text/markdown",
			Content:     fmt.Sprintf("# Document %d\n\nSome text for document %d.", i, i),
			Metadata:    map[string]string{"n": fmt.Sprint(i)},
		}
	}
	return out
}

// ingest uploads n documents to the source and returns the response (documents and PENDING job).
func (b *testBundle) ingest(t *testing.T, sourceID string, n int) *pipelinev1.IngestDocumentsResponse {
	t.Helper()
	resp, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: sourceID, Documents: docInputs(n)})
	require.NoError(t, err)
	return resp
}

// pendingJob makes a source with n documents and returns the processing job ingesting them.
func (b *testBundle) pendingJob(t *testing.T, n int) *pipelinev1.IngestDocumentsResponse {
	t.Helper()
	return b.ingest(t, b.createSource(t).GetSourceId(), n)
}

// completedJob returns a job driven through the Manager to COMPLETED (every document succeeded).
func (b *testBundle) completedJob(t *testing.T) uuid.UUID {
	t.Helper()
	resp := b.pendingJob(t, 1)
	id := uuid.MustParse(resp.GetJob().GetJobId())
	_, err := b.Jobs.Start(tctx(t), id)
	require.NoError(t, err)
	_, err = b.Jobs.RecordResults(tctx(t), jobs.RecordParams{JobID: id, Results: []jobs.DocumentResultUpdate{
		{DocumentID: uuid.MustParse(resp.GetDocuments()[0].GetDocumentId()), Status: jobs.DocSucceeded, ChunkCount: 1, Attempts: 1},
	}})
	require.NoError(t, err)
	_, err = b.Jobs.Complete(tctx(t), id)
	require.NoError(t, err)
	return id
}

// --- gRPC assertions

// requireCode checks err is a status with the code and, when field is set, that both the message
// and a BadRequest detail name the field.
func requireCode(t *testing.T, err error, code codes.Code, field string) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), "message: %s", st.Message())
	if field == "" {
		return st
	}
	require.Contains(t, st.Message(), field)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	require.Contains(t, fields, field, "BadRequest field violations")
	return st
}

// --- REST

// do sends a REST request and returns the status code and body. body may be "" for none.
func (b *testBundle) do(t *testing.T, method, path, body string, header ...string) (int, []byte) {
	t.Helper()
	resp := b.send(t, method, path, body, header...)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

// send sends a REST request and returns the open response; the caller closes its body.
// header is pairs of name, value.
func (b *testBundle) send(t *testing.T, method, path, body string, header ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tctx(t), method, b.baseURL+path, r)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	require.Zero(t, len(header)%2, "header wants name, value pairs")
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	return resp
}

// restError is the gateway's error body (a google.rpc.Status in JSON).
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func decodeError(t *testing.T, body []byte) restError {
	t.Helper()
	var e restError
	require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
	return e
}

// decodeProto decodes a REST body into a response message. Comparing decoded messages rather
// than bytes keeps the tests independent of protojson's (deliberately unstable) whitespace.
func decodeProto(t *testing.T, body []byte, m proto.Message) {
	t.Helper()
	require.NoError(t, protojson.Unmarshal(body, m), "body: %s", body)
}

// --- watching

// watchMsg is one result (or error) of a WatchJob stream read in the background.
type watchMsg struct {
	job *pipelinev1.Job
	err error
}

// watch opens a WatchJob stream and reads it in the background until it ends; the last value
// sent on the channel carries the stream's final error (io.EOF on a clean end).
func (b *testBundle) watch(t *testing.T, jobID string) <-chan watchMsg {
	t.Helper()
	stream, err := b.jobs.WatchJob(tctx(t), &pipelinev1.WatchJobRequest{JobId: jobID})
	require.NoError(t, err)
	return readStream(stream)
}

func readStream(stream grpc.ServerStreamingClient[pipelinev1.WatchJobResponse]) <-chan watchMsg {
	out := make(chan watchMsg, 64)
	go func() {
		defer close(out)
		for {
			resp, err := stream.Recv()
			if err != nil {
				out <- watchMsg{err: err}
				return
			}
			out <- watchMsg{job: resp.GetJob()}
		}
	}()
	return out
}

// next returns the next message of a watch, failing the test if none comes in time.
func next(t *testing.T, ch <-chan watchMsg) watchMsg {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "watch channel closed")
		return m
	case <-time.After(waitTimeout):
		require.FailNow(t, "no watch message within "+waitTimeout.String())
		return watchMsg{}
	}
}

// nextJob returns the next job of a watch, failing the test on an error.
func nextJob(t *testing.T, ch <-chan watchMsg) *pipelinev1.Job {
	t.Helper()
	m := next(t, ch)
	require.NoError(t, m.err)
	return m.job
}

// untilStatus reads a watch until a job in the given status arrives, checking on the way that
// versions strictly increase, and returns every job read.
func untilStatus(t *testing.T, ch <-chan watchMsg, want pipelinev1.JobStatus, lastVersion int64) []*pipelinev1.Job {
	t.Helper()
	var got []*pipelinev1.Job
	for {
		j := nextJob(t, ch)
		require.Greater(t, j.GetVersion(), lastVersion, "versions must strictly increase")
		lastVersion = j.GetVersion()
		got = append(got, j)
		if j.GetStatus() == want {
			return got
		}
	}
}

// newBus is a second event bus on the bundle's Redis prefix, as another replica would have.
func (b *testBundle) newBus(t *testing.T) *events.Bus {
	t.Helper()
	rdb, _ := redistest.New(t) // its own client; the prefix it returns is not used
	return events.New(rdb, b.cfg.RedisPrefix, slog.New(slog.DiscardHandler))
}

// cleanQueueKeys deletes taskq's keys of the test's queue, which are named taskq:{<queue>}:...,
// outside the test's prefix.
func cleanQueueKeys(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	keys, _ := rdb.Keys(ctx, "taskq:{"+prefix+"*").Result()
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

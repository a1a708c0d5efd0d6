package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/app"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/redistest"
	"github.com/pipeline-dev/pipeline/server"
)

// Keys of the scope tests, one per kind of entry.
const (
	readKey    = "read-key-0123456789abcdef"   // raw, :read
	writeKey   = "write-key-0123456789abcdef"  // hashed, no scopes (read+write)
	writeKey2  = "write-key2-0123456789abcdef" // raw, no scopes: rotation with writeKey
	workerKey  = "worker-key-0123456789abcdef" // raw, :worker
	adminKey   = "admin-key-0123456789abcdef"  // hashed, :admin
	unknownKey = "unknown-key-0123456789abcdef"
)

// hashed is the PIPELINE_API_KEYS entry giving key's SHA-256, as `printf %s KEY | sha256sum` prints it.
func hashed(key, scopes string) string {
	sum := sha256.Sum256([]byte(key))
	entry := "sha256:" + hex.EncodeToString(sum[:])
	if scopes != "" {
		entry += ":" + scopes
	}
	return entry
}

func scopedKeys() func(*config.Config) {
	return withAPIKeys(readKey+":read", hashed(writeKey, ""), writeKey2, workerKey+":worker", hashed(adminKey, "admin"))
}

// as returns a call context carrying key as a bearer token.
func as(t *testing.T, key string) context.Context {
	t.Helper()
	return metadata.AppendToOutgoingContext(tctx(t), "authorization", "Bearer "+key)
}

// invoke calls method with an empty request, whatever its request type: auth runs before the
// request is validated or handled, so it decides on the method alone.
func invoke(ctx context.Context, conn *grpc.ClientConn, method string, stream bool) error {
	if !stream {
		return conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	_ = s.SendMsg(&emptypb.Empty{}) // a refusal shows in RecvMsg
	_ = s.CloseSend()
	return s.RecvMsg(&emptypb.Empty{})
}

func TestAuthScopes(t *testing.T) {
	t.Parallel()
	b := setup(t, scopedKeys())

	// The specification of the scope table: every RPC and the scope it needs.
	methods := []struct {
		method string
		scope  string
		stream bool
	}{
		{pipelinev1.JobService_GetJob_FullMethodName, "read", false},
		{pipelinev1.JobService_ListJobs_FullMethodName, "read", false},
		{pipelinev1.JobService_ListJobDocuments_FullMethodName, "read", false},
		{pipelinev1.JobService_WatchJob_FullMethodName, "read", true},
		{pipelinev1.JobService_CancelJob_FullMethodName, "write", false},
		{pipelinev1.JobService_RetryJob_FullMethodName, "write", false},
		{pipelinev1.ContentService_GetSource_FullMethodName, "read", false},
		{pipelinev1.ContentService_ListSources_FullMethodName, "read", false},
		{pipelinev1.ContentService_GetDocument_FullMethodName, "read", false},
		{pipelinev1.ContentService_ListDocuments_FullMethodName, "read", false},
		{pipelinev1.ContentService_CreateSource_FullMethodName, "write", false},
		{pipelinev1.ContentService_DeleteSource_FullMethodName, "write", false},
		{pipelinev1.ContentService_RefreshSource_FullMethodName, "write", false},
		{pipelinev1.ContentService_IngestDocuments_FullMethodName, "write", false},
		{pipelinev1.SearchService_Search_FullMethodName, "read", false},
		{pipelinev1.WorkerService_ReportProgress_FullMethodName, "worker", true},
	}
	keyScopes := map[string][]string{
		readKey:   {"read"},
		writeKey:  {"read", "write"},
		writeKey2: {"read", "write"},
		workerKey: {"worker"},
		adminKey:  {"read", "write", "worker"},
	}

	t.Run("every method with every key", func(t *testing.T) {
		for _, m := range methods {
			for key, scopes := range keyScopes {
				err := invoke(as(t, key), b.conn, m.method, m.stream)
				code := status.Code(err)
				if strings.Contains(strings.Join(scopes, " "), m.scope) {
					require.NotContains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, code,
						"%s with a %v key: %v", m.method, scopes, err)
				} else {
					st := requireCode(t, err, codes.PermissionDenied, "")
					require.Contains(t, st.Message(), "lacks the "+m.scope+" scope", "%s with a %v key", m.method, scopes)
				}
			}
			requireCode(t, invoke(as(t, unknownKey), b.conn, m.method, m.stream), codes.Unauthenticated, "")
			requireCode(t, invoke(tctx(t), b.conn, m.method, m.stream), codes.Unauthenticated, "")
		}
	})

	t.Run("read key reads, cannot write", func(t *testing.T) {
		src, err := b.content.CreateSource(as(t, writeKey), &pipelinev1.CreateSourceRequest{Name: "docs"})
		require.NoError(t, err)
		ing, err := b.content.IngestDocuments(as(t, writeKey), &pipelinev1.IngestDocumentsRequest{
			SourceId: src.GetSource().GetSourceId(), Documents: docInputs(1),
		})
		require.NoError(t, err)
		jobID := ing.GetJob().GetJobId()

		_, err = b.jobs.ListJobs(as(t, readKey), &pipelinev1.ListJobsRequest{})
		require.NoError(t, err)
		_, err = b.jobs.GetJob(as(t, readKey), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		_, err = b.content.ListDocuments(as(t, readKey), &pipelinev1.ListDocumentsRequest{SourceId: src.GetSource().GetSourceId()})
		require.NoError(t, err)
		_, err = b.search.Search(as(t, readKey), &pipelinev1.SearchRequest{Query: "document"})
		require.NoError(t, err)
		stream, err := b.jobs.WatchJob(as(t, readKey), &pipelinev1.WatchJobRequest{JobId: jobID})
		require.NoError(t, err)
		first, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, jobID, first.GetJob().GetJobId())

		_, err = b.content.CreateSource(as(t, readKey), &pipelinev1.CreateSourceRequest{Name: "nope"})
		st := requireCode(t, err, codes.PermissionDenied, "")
		require.Contains(t, st.Message(), "write scope")
		_, err = b.content.IngestDocuments(as(t, readKey), &pipelinev1.IngestDocumentsRequest{
			SourceId: src.GetSource().GetSourceId(), Documents: docInputs(1),
		})
		requireCode(t, err, codes.PermissionDenied, "")
		_, err = b.jobs.CancelJob(as(t, readKey), &pipelinev1.CancelJobRequest{JobId: jobID})
		requireCode(t, err, codes.PermissionDenied, "")

		// The refused calls changed nothing; the write key may cancel.
		got, err := b.jobs.GetJob(as(t, readKey), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, got.GetJob().GetStatus())
		_, err = b.jobs.CancelJob(as(t, writeKey), &pipelinev1.CancelJobRequest{JobId: jobID})
		require.NoError(t, err)
	})

	t.Run("REST", func(t *testing.T) {
		bearer := func(key string) []string { return []string{"Authorization", "Bearer " + key} }
		code, body := b.do(t, http.MethodGet, "/v1/jobs", "", bearer(readKey)...)
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		code, body = b.do(t, http.MethodPost, "/v1/sources", `{"name":"rest"}`, bearer(readKey)...)
		require.Equal(t, http.StatusForbidden, code, "body: %s", body)
		e := decodeError(t, body)
		require.Equal(t, int(codes.PermissionDenied), e.Code)
		require.Contains(t, e.Message, "write scope")
		code, body = b.do(t, http.MethodPost, "/v1/sources", `{"name":"rest"}`, bearer(writeKey2)...)
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", bearer(workerKey)...)
		require.Equal(t, http.StatusForbidden, code, "body: %s", body)
		require.Contains(t, decodeError(t, body).Message, "read scope")
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", bearer(unknownKey)...)
		require.Equal(t, http.StatusUnauthorized, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "")
		require.Equal(t, http.StatusUnauthorized, code, "body: %s", body)
	})

	t.Run("worker scope is WorkerService only", func(t *testing.T) {
		_, err := b.jobs.GetJob(as(t, workerKey), &pipelinev1.GetJobRequest{JobId: uuid.NewString()})
		st := requireCode(t, err, codes.PermissionDenied, "")
		require.Contains(t, st.Message(), "read scope")

		report := func(key string) error {
			stream, err := pipelinev1.NewWorkerServiceClient(b.conn).ReportProgress(as(t, key))
			require.NoError(t, err)
			// The server may refuse the stream before the message goes out; Send then says EOF
			// and Recv gives the status.
			if err := stream.Send(&pipelinev1.ReportProgressRequest{WorkerId: "w", JobId: uuid.NewString()}); err != nil && !errors.Is(err, io.EOF) {
				require.NoError(t, err)
			}
			require.NoError(t, stream.CloseSend())
			_, err = stream.Recv()
			return err
		}
		for _, key := range []string{readKey, writeKey, writeKey2} {
			st := requireCode(t, report(key), codes.PermissionDenied, "")
			require.Contains(t, st.Message(), "worker scope")
		}
		for _, key := range []string{workerKey, adminKey} {
			// Past auth, the unknown job is the handler's concern.
			code := status.Code(report(key))
			require.NotContains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, code, "key %s", key)
		}
	})

	t.Run("rotation and hashed entries", func(t *testing.T) {
		for _, key := range []string{writeKey, writeKey2, adminKey} { // hashed, raw, hashed with scopes
			_, err := b.content.CreateSource(as(t, key), &pipelinev1.CreateSourceRequest{Name: "rotated"})
			require.NoError(t, err)
		}
		// The hash itself is not a key.
		_, err := b.jobs.ListJobs(as(t, strings.TrimPrefix(hashed(writeKey, ""), "sha256:")), &pipelinev1.ListJobsRequest{})
		requireCode(t, err, codes.Unauthenticated, "")
		// Nor is a key one character off, nor a key with its scope suffix.
		_, err = b.jobs.ListJobs(as(t, readKey[:len(readKey)-1]+"x"), &pipelinev1.ListJobsRequest{})
		requireCode(t, err, codes.Unauthenticated, "")
		_, err = b.jobs.ListJobs(as(t, readKey+":read"), &pipelinev1.ListJobsRequest{})
		requireCode(t, err, codes.Unauthenticated, "")
	})

	t.Run("health and reflection are open", func(t *testing.T) {
		resp, err := b.health.Check(tctx(t), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		stream, err := reflectionpb.NewServerReflectionClient(b.conn).ServerReflectionInfo(tctx(t))
		require.NoError(t, err)
		require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}))
		_, err = stream.Recv()
		require.NoError(t, err)
		require.NoError(t, stream.CloseSend())
		code, _ := b.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, code)
	})

	t.Run("webhook is outside key auth", func(t *testing.T) {
		// No Firecrawl here: the webhook answers 503 for that, not 401 for the missing key.
		code, body := b.do(t, http.MethodPost, "/v1/webhooks/firecrawl", `{}`)
		require.Equal(t, http.StatusServiceUnavailable, code, "body: %s", body)
	})
}

func TestAPIKeyEntries(t *testing.T) {
	t.Parallel()
	for entry, want := range map[string][]string{
		"abcdefghijklmnop":                   {"read", "write"},
		"abcdefghijklmnop:read":              {"read"},
		"abcdefghijklmnop:worker":            {"worker"},
		"abcdefghijklmnop:write+read":        {"read", "write"},
		"abcdefghijklmnop:all":               {"read", "write", "worker"},
		hashed("abcdefghijklmnop", ""):       {"read", "write"},
		hashed("abcdefghijklmnop", "worker"): {"worker"},
	} {
		k, err := config.ParseAPIKey(entry)
		require.NoError(t, err, entry)
		require.Equal(t, want, k.Scopes, entry)
		require.Equal(t, sha256.Sum256([]byte("abcdefghijklmnop")), k.Digest, entry)
	}
	for _, entry := range []string{
		"short-secret",                      // under 16 characters
		"abcdefghijklmnop:",                 // empty scope
		"abcdefghijklmnop:reed",             // unknown scope
		"abcdefghijklmnop:read:write",       // ':' in the scope part
		"sha256:abcdef",                     // short digest
		"sha256:" + strings.Repeat("z", 64), // not hex
		"sha256:" + strings.Repeat("a", 66), // long digest
	} {
		_, err := config.ParseAPIKey(entry)
		require.Error(t, err, entry)
	}
	c := config.Default()
	c.APIKeys = []string{"abcdefghijklmnop:read", hashed("abcdefghijklmnop", "write")}
	err := c.Validate()
	require.ErrorContains(t, err, "PIPELINE_API_KEYS: entry 2 is the same key as entry 1")
}

// TestInProcessWorkersWithKeys runs the service as `pipeline dev` does, with keys configured
// but none of them raw with the worker scope: the workers in the process still process a job.
func TestInProcessWorkersWithKeys(t *testing.T) {
	t.Parallel()
	log, logged := newLogBuffer()
	_, dbURL := dbtest.NewWithURL(t)
	rdb, prefix := redistest.New(t)
	t.Cleanup(func() { cleanQueueKeys(rdb, prefix) })
	cfg := config.Default()
	cfg.DatabaseURL, cfg.RedisURL, cfg.RedisPrefix = dbURL, redistest.URL(), prefix
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Migrate = false
	cfg.DataDir = t.TempDir()
	cfg.PollInterval, cfg.WatchPollInterval = 200*time.Millisecond, 200*time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	// The first entry, which `pipeline dev` hands its workers, is a hash with the read scope.
	cfg.APIKeys = []string{hashed(readKey, "read"), writeKey}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	a, err := app.Build(ctx, cfg, log, app.RoleServer)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	deps := a.ServerDeps()
	require.NotEmpty(t, deps.WorkerKey, "an in-process worker key when keys are configured")
	srv, err := server.New(cfg, deps)
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); runErr <- srv.Run(runCtx) }()
	go func() { defer wg.Done(); a.Reconciler.Run(runCtx) }()
	grpcAddr, _, err := srv.Addrs(ctx)
	require.NoError(t, err)
	workCtx, stopWorkers := context.WithCancel(context.Background())
	workersDone := make(chan error, 1)
	go func() { workersDone <- a.RunWorkers(workCtx, grpcAddr, cfg.APIKeys[0]) }()
	t.Cleanup(func() {
		stopWorkers()
		require.NoError(t, <-workersDone)
		stop()
		wg.Wait()
		require.NoError(t, <-runErr)
	})

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	content := pipelinev1.NewContentServiceClient(conn)
	jobsClient := pipelinev1.NewJobServiceClient(conn)
	src, err := content.CreateSource(as(t, writeKey), &pipelinev1.CreateSourceRequest{Name: "dev"})
	require.NoError(t, err)
	ing, err := content.IngestDocuments(as(t, writeKey), &pipelinev1.IngestDocumentsRequest{
		SourceId: src.GetSource().GetSourceId(), Documents: docInputs(3),
	})
	require.NoError(t, err)

	stream, err := jobsClient.WatchJob(as(t, readKey), &pipelinev1.WatchJobRequest{JobId: ing.GetJob().GetJobId()})
	require.NoError(t, err)
	got := untilStatus(t, readStream(stream), pipelinev1.JobStatus_JOB_STATUS_COMPLETED, 0)
	job := got[len(got)-1]
	require.EqualValues(t, 3, job.GetProcessing().GetProcessedCount(), "%v", job)

	// The in-process key is a worker key and nothing more.
	_, err = jobsClient.ListJobs(as(t, deps.WorkerKey), &pipelinev1.ListJobsRequest{})
	requireCode(t, err, codes.PermissionDenied, "")
	for _, secret := range []string{readKey, writeKey, deps.WorkerKey} {
		require.NotContains(t, logged.String(), secret)
	}
}

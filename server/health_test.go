package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/server"
)

// readyzBody is /readyz's JSON.
type readyzBody struct {
	Status string `json:"status"`
	Checks map[string]struct {
		Status    string  `json:"status"`
		Required  bool    `json:"required"`
		LatencyMS float64 `json:"latency_ms"`
		Error     string  `json:"error"`
	} `json:"checks"`
}

func (b *testBundle) readyz(t *testing.T) (int, readyzBody) {
	t.Helper()
	code, body := b.do(t, http.MethodGet, "/readyz", "")
	var r readyzBody
	require.NoError(t, json.Unmarshal(body, &r), "body: %s", body)
	return code, r
}

// statuses returns the dependencies' statuses from /readyz.
func (r readyzBody) statuses() map[string]string {
	out := map[string]string{}
	for name, c := range r.Checks {
		out[name] = c.Status
	}
	return out
}

// requireServing polls the gRPC health service until each name has its expected status.
func (b *testBundle) requireServing(t *testing.T, want map[string]healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	got := map[string]healthpb.HealthCheckResponse_ServingStatus{}
	require.Eventually(t, func() bool {
		for name := range want {
			resp, err := b.health.Check(tctx(t), &healthpb.HealthCheckRequest{Service: name})
			if err != nil {
				return false
			}
			got[name] = resp.GetStatus()
		}
		for name, st := range want {
			if got[name] != st {
				return false
			}
		}
		return true
	}, waitTimeout, 20*time.Millisecond, "gRPC health: %v", got)
}

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
)

func TestHealthAllUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, r := b.readyz(t)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready", r.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "redis": "ok", "vector_store": "ok", "embedder": "ok"}, r.statuses())
	require.True(t, r.Checks["postgres"].Required)
	require.True(t, r.Checks["redis"].Required)
	require.False(t, r.Checks["vector_store"].Required)
	require.False(t, r.Checks["embedder"].Required)
	b.requireServing(t, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": serving, "postgres": serving, "redis": serving, "vector_store": serving, "embedder": serving,
		"pipeline.v1.JobService": serving, "pipeline.v1.ContentService": serving, "pipeline.v1.SearchService": serving,
		"pipeline.v1.WorkerService": serving, "pipeline.v1.SystemService": serving,
	})
}

// failingStore is a vector store whose every call fails, as an unreachable Milvus does.
type failingStore struct{ vector.Store }

func (failingStore) Count(context.Context, vector.Filter) (int, error) {
	return 0, errors.New("milvus: connection refused to 10.1.2.3:19530")
}

// failingEmbedder fails every call, as an embeddings server that is down does.
type failingEmbedder struct{ embed.Embedder }

func (failingEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	return nil, errors.New("503 from https://user:secret@embeddings.internal")
}

// hangingEmbedder never answers until its caller gives up.
type hangingEmbedder struct{ embed.Embedder }

func (hangingEmbedder) Embed(ctx context.Context, _ []string) ([][]float32, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A vector store and an embedder that fail show as unavailable under their own names, search
// goes NOT_SERVING, and the rest stays up: the server is still ready (degraded), since uploads,
// jobs and watching work without them. The failure's text (an address, a password) stays out
// of /readyz.
func TestHealthOptionalDependencyDown(t *testing.T) {
	t.Parallel()
	b := setupDeps(t, func(d *server.Deps) {
		d.Vectors = failingStore{d.Vectors}
		d.Embedder = failingEmbedder{d.Embedder}
	})
	code, r := b.readyz(t)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "degraded", r.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "redis": "ok", "vector_store": "unavailable", "embedder": "unavailable"}, r.statuses())
	for _, name := range []string{"vector_store", "embedder"} {
		require.NotEmpty(t, r.Checks[name].Error)
		require.NotContains(t, r.Checks[name].Error, "10.1.2.3")
		require.NotContains(t, r.Checks[name].Error, "secret")
	}
	b.requireServing(t, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": serving, "postgres": serving, "redis": serving, "vector_store": notServing, "embedder": notServing,
		"pipeline.v1.SearchService": notServing, "pipeline.v1.JobService": serving, "pipeline.v1.ContentService": serving,
	})
}

// A dependency that does not answer is cut off at the check's deadline and reported as such; the
// others are reported as usual.
func TestHealthDependencyHangs(t *testing.T) {
	t.Parallel()
	b := setupDeps(t, func(d *server.Deps) { d.Embedder = hangingEmbedder{d.Embedder} })
	code, r := b.readyz(t)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "degraded", r.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "redis": "ok", "vector_store": "ok", "embedder": "unavailable"}, r.statuses())
	require.Contains(t, r.Checks["embedder"].Error, "no answer within")
	b.requireServing(t, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"embedder": notServing, "vector_store": serving, "pipeline.v1.SearchService": notServing, "": serving,
	})
}

// A server without search (no embedder or vector store) says so, and search is not served.
func TestHealthWithoutSearch(t *testing.T) {
	t.Parallel()
	b := setupDeps(t, func(d *server.Deps) { d.Embedder, d.Vectors = nil, nil })
	code, r := b.readyz(t)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "not_configured", r.statuses()["vector_store"])
	require.Equal(t, "not_configured", r.statuses()["embedder"])
	b.requireServing(t, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"pipeline.v1.SearchService": notServing, "pipeline.v1.JobService": serving, "": serving,
	})
}

package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/embedded"
)

// failingEmbedder fails with the errors it is given, in turn, then embeds.
type failingEmbedder struct {
	embed.Embedder
	errs []error
}

func (f *failingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Embedder.Embed(ctx, texts)
}

func TestEmbedderCallsAreTimedCountedAndTraced(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h, err := embed.NewHashing(embed.HashingConfig{Dimension: 16})
	require.NoError(t, err)
	e := telemetry.Embedder(&failingEmbedder{Embedder: h, errs: []error{
		errs.Transient(errors.New("503"), 0),
		errors.New("bad input"),
		context.Canceled,
	}}, m, tp)
	require.Equal(t, 16, e.Dimension())
	require.Equal(t, h.Fingerprint(), e.Fingerprint())

	ctx, parent := tp.Tracer("test").Start(t.Context(), "worker.embed")
	for range 3 {
		_, err := e.Embed(ctx, []string{"a"})
		require.Error(t, err)
	}
	vecs, err := e.Embed(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.Len(t, vecs, 2)
	parent.End()
	_, err = e.Embed(t.Context(), []string{"outside any trace"}) // a readiness probe
	require.NoError(t, err)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_embedder_errors_total Failed embedder calls, by operation and kind (transient, permanent, canceled).
# TYPE pipeline_embedder_errors_total counter
pipeline_embedder_errors_total{kind="canceled",operation="embed"} 1
pipeline_embedder_errors_total{kind="permanent",operation="embed"} 1
pipeline_embedder_errors_total{kind="transient",operation="embed"} 1
`), "pipeline_embedder_errors_total"))
	require.Equal(t, uint64(5), sampleCount(t, reg, "pipeline_embedder_request_duration_seconds"))

	spans := rec.Ended()
	require.Len(t, spans, 5, "four children of the caller's span and the caller's; none for the call outside a trace")
	require.Equal(t, "worker.embed", spans[4].Name())
	for i, s := range spans[:4] {
		require.Equal(t, "embedder.embed", s.Name())
		require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
		if i < 3 {
			require.Equal(t, codes.Error, s.Status().Code)
		} else {
			require.Equal(t, codes.Unset, s.Status().Code)
		}
	}
}

func sampleCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func TestVectorStoreCallsAreTimedCountedAndTraced(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	inner, err := embedded.Open(t.TempDir(), 4)
	require.NoError(t, err)
	s := telemetry.VectorStore(inner, m, tp)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	ctx, parent := tp.Tracer("test").Start(t.Context(), "worker.store")
	defer parent.End()

	rec1 := vector.Record{ID: vector.ChunkID("d1", 0), SourceID: "s1", DocumentID: "d1", Text: "x", Vector: []float32{1, 0, 0, 0}}
	require.NoError(t, s.Upsert(ctx, []vector.Record{rec1}))
	require.Error(t, s.Upsert(ctx, []vector.Record{{ID: "bad", DocumentID: "d2", Vector: []float32{1}}}), "wrong dimension")
	n, err := s.Count(ctx, vector.Filter{SourceIDs: []string{"s1"}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	hits, err := s.Search(ctx, []float32{1, 0, 0, 0}, 3, vector.Filter{})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	require.NoError(t, s.DeleteDocument(ctx, "d1", 0))
	require.NoError(t, s.DeleteSource(ctx, "s1"))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pipeline_vector_store_errors_total Failed vector-store calls, by operation and kind (transient, permanent, canceled).
# TYPE pipeline_vector_store_errors_total counter
pipeline_vector_store_errors_total{kind="permanent",operation="upsert"} 1
`), "pipeline_vector_store_errors_total"))
	require.Equal(t, uint64(6), sampleCount(t, reg, "pipeline_vector_store_request_duration_seconds"))
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
	}
	require.Equal(t, []string{
		"vector_store.upsert", "vector_store.upsert", "vector_store.count", "vector_store.search",
		"vector_store.delete_document", "vector_store.delete_source",
	}, names)
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	require.Equal(t, metrics.ErrorCanceled, telemetry.ErrorKind(context.Canceled))
	require.Equal(t, metrics.ErrorTransient, telemetry.ErrorKind(context.DeadlineExceeded))
	require.Equal(t, metrics.ErrorTransient, telemetry.ErrorKind(errs.Transient(errors.New("x"), 0)))
	require.Equal(t, metrics.ErrorPermanent, telemetry.ErrorKind(errors.New("x")))
}

// pingStore is a store with a Ping, as readiness checks look for.
type pingStore struct {
	vector.Store
	pings int
}

func (p *pingStore) Ping(context.Context) error { p.pings++; return nil }

func TestVectorStoreKeepsPing(t *testing.T) {
	t.Parallel()
	inner, err := embedded.Open(t.TempDir(), 4)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, inner.Close()) })
	type pinger interface{ Ping(context.Context) error }

	_, ok := telemetry.VectorStore(inner, nil, nil).(pinger)
	require.False(t, ok, "a store without Ping gets none")
	ps := &pingStore{Store: inner}
	wrapped, ok := telemetry.VectorStore(ps, nil, nil).(pinger)
	require.True(t, ok)
	require.NoError(t, wrapped.Ping(t.Context()))
	require.Equal(t, 1, ps.pings)
}

package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pipeline-dev/pipeline/internal/embed"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

const tracerName = "github.com/pipeline-dev/pipeline/internal/telemetry"

// ErrorKind classifies a failed call for the *_errors_total counters: canceled (the caller gave
// up: shutdown, a cancelled job), transient (worth retrying) or permanent.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return metrics.ErrorCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return metrics.ErrorTransient
	}
	if ok, _ := errs.IsTransient(err); ok {
		return metrics.ErrorTransient
	}
	return metrics.ErrorPermanent
}

// call times one call, records it in a span and hands the result to observe. The span is a
// child of the caller's: a call outside any trace (a readiness probe) makes no trace of its own,
// which would only be noise.
func call(ctx context.Context, tr trace.Tracer, name string, attrs []attribute.KeyValue, observe func(kind string, d time.Duration), fn func(ctx context.Context) error) error {
	span := trace.SpanFromContext(ctx) // non-recording without a parent
	if span.SpanContext().IsValid() {
		ctx, span = tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		defer span.End()
	}
	start := time.Now()
	err := fn(ctx)
	kind := ""
	if err != nil {
		kind = ErrorKind(err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", kind))
	}
	observe(kind, time.Since(start))
	return err
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// Embedder wraps e so that every call is timed and counted in m and traced as a span
// "embedder.embed". Dimension and Fingerprint pass through.
func Embedder(e embed.Embedder, m *metrics.Metrics, tp trace.TracerProvider) embed.Embedder {
	return &instrumentedEmbedder{Embedder: e, m: m, tr: tracerOf(tp)}
}

type instrumentedEmbedder struct {
	embed.Embedder
	m  *metrics.Metrics
	tr trace.Tracer
}

func (e *instrumentedEmbedder) Embed(ctx context.Context, texts []string) (vecs [][]float32, err error) {
	err = call(ctx, e.tr, "embedder.embed", []attribute.KeyValue{attribute.Int("pipeline.embed.texts", len(texts))},
		func(kind string, d time.Duration) { e.m.ObserveEmbed("embed", kind, d) },
		func(ctx context.Context) error {
			var err error
			vecs, err = e.Embedder.Embed(ctx, texts)
			return err
		})
	return vecs, err
}

// Unwrap returns the embedder inside.
func (e *instrumentedEmbedder) Unwrap() embed.Embedder { return e.Embedder }

// VectorStore wraps s so that every call but Dimension and Close is timed and counted in m and
// traced as a span "vector_store.<operation>". A store with a Ping method keeps it (readiness
// checks look for it).
func VectorStore(s vector.Store, m *metrics.Metrics, tp trace.TracerProvider) vector.Store {
	is := &instrumentedStore{Store: s, m: m, tr: tracerOf(tp)}
	if p, ok := s.(pinger); ok {
		return &pingingStore{instrumentedStore: is, p: p}
	}
	return is
}

type pinger interface {
	Ping(ctx context.Context) error
}

type pingingStore struct {
	*instrumentedStore
	p pinger
}

func (s *pingingStore) Ping(ctx context.Context) error {
	return s.do(ctx, "ping", nil, s.p.Ping)
}

type instrumentedStore struct {
	vector.Store
	m  *metrics.Metrics
	tr trace.Tracer
}

func (s *instrumentedStore) do(ctx context.Context, op string, attrs []attribute.KeyValue, fn func(ctx context.Context) error) error {
	attrs = append(attrs, attribute.String("db.operation.name", op))
	return call(ctx, s.tr, "vector_store."+op, attrs,
		func(kind string, d time.Duration) { s.m.ObserveVector(op, kind, d) }, fn)
}

func (s *instrumentedStore) Upsert(ctx context.Context, records []vector.Record) error {
	return s.do(ctx, "upsert", []attribute.KeyValue{attribute.Int("pipeline.vector.records", len(records))},
		func(ctx context.Context) error { return s.Store.Upsert(ctx, records) })
}

func (s *instrumentedStore) DeleteDocument(ctx context.Context, documentID string, fromIndex int) error {
	return s.do(ctx, "delete_document", []attribute.KeyValue{attribute.String("pipeline.document_id", documentID)},
		func(ctx context.Context) error { return s.Store.DeleteDocument(ctx, documentID, fromIndex) })
}

func (s *instrumentedStore) DeleteSource(ctx context.Context, sourceID string) error {
	return s.do(ctx, "delete_source", []attribute.KeyValue{attribute.String("pipeline.source_id", sourceID)},
		func(ctx context.Context) error { return s.Store.DeleteSource(ctx, sourceID) })
}

func (s *instrumentedStore) Search(ctx context.Context, vec []float32, topK int, filter vector.Filter) (hits []vector.Hit, err error) {
	err = s.do(ctx, "search", []attribute.KeyValue{attribute.Int("pipeline.vector.top_k", topK)},
		func(ctx context.Context) error {
			var err error
			hits, err = s.Store.Search(ctx, vec, topK, filter)
			return err
		})
	return hits, err
}

func (s *instrumentedStore) Count(ctx context.Context, filter vector.Filter) (n int, err error) {
	err = s.do(ctx, "count", nil, func(ctx context.Context) error {
		var err error
		n, err = s.Store.Count(ctx, filter)
		return err
	})
	return n, err
}

// Unwrap returns the store inside.
func (s *instrumentedStore) Unwrap() vector.Store { return s.Store }

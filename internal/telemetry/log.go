package telemetry

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys the service correlates by.
const (
	KeyTraceID  = "trace_id"
	KeySpanID   = "span_id"
	KeyJobID    = "job_id"
	KeySourceID = "source_id"
	KeyBatchID  = "batch_id"
)

type logAttrsKey struct{}

// WithLogAttrs returns ctx carrying attrs, which every record logged with that ctx (through a
// LogHandler) gets: the job, source and batch a piece of work belongs to, set once where it
// becomes known rather than passed to every log call. Later values of a key replace earlier ones.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	prev, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	merged := make([]slog.Attr, 0, len(prev)+len(attrs))
	for _, a := range prev {
		if !slices.ContainsFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key }) {
			merged = append(merged, a)
		}
	}
	merged = append(merged, attrs...)
	return context.WithValue(ctx, logAttrsKey{}, merged)
}

// LogAttrs returns the attributes WithLogAttrs put in ctx.
func LogAttrs(ctx context.Context) []slog.Attr {
	a, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	return a
}

// LogHandler adds to every record the trace_id and span_id of the span in its context (when the
// span is valid: a request without a trace gets none) and the attributes of WithLogAttrs. A key
// the record or the logger (With) already has is not added again, so code that passes job_id
// itself is not logged twice.
type LogHandler struct {
	next slog.Handler
	// keys are the top-level keys the logger already carries (WithAttrs).
	keys []string
	// grouped: attributes added now would land inside a group; the ids belong at the top
	// level, so a grouped handler adds none.
	grouped bool
}

// NewLogHandler wraps next.
func NewLogHandler(next slog.Handler) *LogHandler { return &LogHandler{next: next} }

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := &LogHandler{next: h.next.WithAttrs(attrs), keys: h.keys, grouped: h.grouped}
	if !h.grouped {
		c.keys = slices.Clip(c.keys)
		for _, a := range attrs {
			c.keys = append(c.keys, a.Key)
		}
	}
	return c
}

// WithGroup implements slog.Handler.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &LogHandler{next: h.next.WithGroup(name), keys: h.keys, grouped: true}
}

// Handle implements slog.Handler.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.grouped || ctx == nil {
		return h.next.Handle(ctx, r)
	}
	var extra []slog.Attr
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		extra = append(extra, slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	extra = append(extra, LogAttrs(ctx)...)
	if len(extra) == 0 {
		return h.next.Handle(ctx, r)
	}
	have := func(key string) bool {
		if slices.Contains(h.keys, key) {
			return true
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = a.Key == key
			return !found
		})
		return found
	}
	r = r.Clone()
	for _, a := range extra {
		if !have(a.Key) {
			r.AddAttrs(a)
		}
	}
	return h.next.Handle(ctx, r)
}

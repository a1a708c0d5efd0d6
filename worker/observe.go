package worker

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/metrics"
	"github.com/pipeline-dev/pipeline/internal/telemetry"
)

// What the worker records of its work: metrics (documents by outcome, time per document and per
// stage, busy slots), spans (one per document, one per stage, as children of the queue's
// delivery span, which continues the trace of the call that enqueued the batch), and the job,
// batch and source ids on the context for every log line.

const tracerName = "github.com/pipeline-dev/pipeline/worker"

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// trackSlots starts the worker's utilization gauges when it knows its slot count.
func (w *Worker) trackSlots() {
	w.busy, w.untrack = func(int) {}, func() {}
	if w.cfg.Slots > 0 {
		w.busy, w.untrack = w.cfg.Metrics.WorkerStarted(w.cfg.ID, w.cfg.Slots)
	}
}

// Close removes the worker's utilization series: it is gone, not idle.
func (w *Worker) Close() { w.untrack() }

// slotBusy marks one slot busy until the returned function runs.
func (w *Worker) slotBusy() func() {
	w.busy(1)
	return func() { w.busy(-1) }
}

// observeBatch puts the claimed batch's ids on the context (for logs) and on the delivery span.
func (w *Worker) observeBatch(ctx context.Context, b *jobs.Batch, job *jobs.Job) context.Context {
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("pipeline.job_id", b.JobID.String()),
		attribute.String("pipeline.batch_id", b.ID.String()),
		attribute.String("pipeline.source_id", job.SourceID.String()),
		attribute.Int("pipeline.batch.documents", len(b.DocumentIDs)),
	)
	return telemetry.WithLogAttrs(ctx,
		slog.String(telemetry.KeyJobID, b.JobID.String()),
		slog.String(telemetry.KeyBatchID, b.ID.String()),
		slog.String(telemetry.KeySourceID, job.SourceID.String()),
	)
}

// docObserver follows one document through its stages.
type docObserver struct {
	w           *Worker
	start       time.Time
	span        trace.Span
	contentType string
}

// startDocument starts the document's span; finish ends it.
func (w *Worker) startDocument(ctx context.Context, docID string) (context.Context, *docObserver) {
	ctx, span := w.tracer.Start(ctx, "worker.document", trace.WithAttributes(attribute.String("pipeline.document_id", docID)))
	ctx = telemetry.WithLogAttrs(ctx, slog.String("document_id", docID))
	return ctx, &docObserver{w: w, start: time.Now(), span: span}
}

// stage starts one stage's span and returns its context and the function that ends it and
// records its time.
func (o *docObserver) stage(ctx context.Context, name string) (context.Context, func(error)) {
	ctx, span := o.w.tracer.Start(ctx, "worker."+name)
	start := time.Now()
	return ctx, func(err error) {
		o.w.cfg.Metrics.ObserveStage(name, time.Since(start))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// finish records the document's outcome. An interrupted document (the caller decides: shutdown,
// cancel or lost lease before a final outcome) is not counted: it is not finished, someone will
// take it up again.
func (o *docObserver) finish(res *pipelinev1.DocumentResult, interrupted bool) {
	defer o.span.End()
	if interrupted {
		o.span.SetAttributes(attribute.Bool("pipeline.interrupted", true))
		return
	}
	var outcome string
	switch res.GetStatus() {
	case pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED:
		outcome = metrics.OutcomeSuccess
	case pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED:
		outcome = metrics.OutcomeSkipped
	default:
		outcome = metrics.OutcomeFailed
		o.span.SetStatus(codes.Error, res.GetLastError())
	}
	o.span.SetAttributes(
		attribute.String("pipeline.outcome", outcome),
		attribute.Int64("pipeline.chunks", res.GetChunkCount()),
		attribute.Int("pipeline.attempts", int(res.GetAttempts())),
	)
	o.w.cfg.Metrics.ObserveDocument(outcome, o.contentType, time.Since(o.start))
}

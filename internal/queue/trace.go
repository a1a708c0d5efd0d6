package queue

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/taskq/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// propagator carries the W3C trace context (traceparent, tracestate) in a message.
var propagator = propagation.TraceContext{}

const tracerName = "github.com/pipeline-dev/pipeline/internal/queue"

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// enqueueArg is the key under which a message's arguments carry the number of its batch's
// enqueue, beside the trace context.
const enqueueArg = "pipeline-enqueue"

// messageArgs are a message's arguments: the batch id, then a string map holding the number of
// the batch's enqueue (n) and, when ctx carries a span, the trace context (decision 0034). A
// consumer of an earlier version reads the map as a trace context and ignores the other key;
// only one from before messages carried a trace context would drop the message (its marker
// then keeps the batch until the reconciler sends it again, once overdue).
func messageArgs(ctx context.Context, batchID string, n int) []any {
	carrier := propagation.MapCarrier{enqueueArg: strconv.Itoa(n)}
	propagator.Inject(ctx, carrier)
	return []any{batchID, map[string]string(carrier)}
}

// parseArgs reads a message's batch id, the number of its enqueue (empty when it has none) and
// its trace context (nil when it has none).
func parseArgs(msg *taskq.Message) (batchID, enqueue string, _ propagation.MapCarrier, _ error) {
	b, err := msg.MarshalArgs() // the arguments as msgpack, however the message arrived
	if err != nil {
		return "", "", nil, fmt.Errorf("read arguments: %w", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return "", "", nil, fmt.Errorf("read arguments: %w", err)
	}
	if n < 1 || n > 2 {
		return "", "", nil, fmt.Errorf("want 1 or 2 arguments, got %d", n)
	}
	if batchID, err = dec.DecodeString(); err != nil {
		return "", "", nil, fmt.Errorf("read batch id: %w", err)
	}
	if n == 1 {
		return batchID, "", nil, nil
	}
	var carrier map[string]string
	if err := dec.Decode(&carrier); err != nil {
		// A bad map costs the trace (and the marker's check), not the batch.
		return batchID, "", nil, nil
	}
	enqueue = carrier[enqueueArg]
	delete(carrier, enqueueArg)
	if len(carrier) == 0 {
		carrier = nil
	}
	return batchID, enqueue, carrier, nil
}

var messagingAttrs = []attribute.KeyValue{
	attribute.String("messaging.system", "redis"),
	attribute.String("messaging.destination.name", Name),
}

// startEnqueueSpan starts the producer span of one message; the message carries its context.
func (q *Queue) startEnqueueSpan(ctx context.Context, batchID string, n int) (context.Context, func(error)) {
	ctx, span := q.tracer.Start(ctx, "queue.enqueue", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(append(messagingAttrs,
			attribute.String("pipeline.batch_id", batchID),
			attribute.Int("pipeline.message_number", n))...))
	return ctx, endSpan(span)
}

// startDeliverySpan starts the consumer span of a delivered message, a child of the span that
// enqueued it when the message carries one.
func (q *Queue) startDeliverySpan(ctx context.Context, carrier propagation.MapCarrier, batchID string, delivery int) (context.Context, func(error)) {
	if len(carrier) > 0 {
		ctx = propagator.Extract(ctx, carrier)
	}
	ctx, span := q.tracer.Start(ctx, "queue.process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(append(messagingAttrs,
			attribute.String("pipeline.batch_id", batchID),
			attribute.Int("messaging.message.delivery_count", delivery))...))
	return ctx, endSpan(span)
}

func endSpan(span trace.Span) func(error) {
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

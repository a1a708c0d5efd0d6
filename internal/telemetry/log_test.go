package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pipeline-dev/pipeline/internal/telemetry"
)

// jsonLogger logs JSON lines through a LogHandler into a buffer.
func jsonLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil))), &buf
}

// lines decodes every logged line.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

func TestLogsCarryTraceAndContextIDs(t *testing.T) {
	t.Parallel()
	log, buf := jsonLogger()
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "call")
	defer span.End()
	ctx = telemetry.WithLogAttrs(ctx, slog.String("job_id", "j1"), slog.String("source_id", "s1"))
	ctx = telemetry.WithLogAttrs(ctx, slog.String("job_id", "j2")) // a later value replaces

	log.InfoContext(ctx, "batch claimed", "documents", 3)
	log.Info("no context")
	got := lines(t, buf)
	require.Len(t, got, 2)
	require.Equal(t, span.SpanContext().TraceID().String(), got[0]["trace_id"])
	require.Equal(t, span.SpanContext().SpanID().String(), got[0]["span_id"])
	require.Equal(t, "j2", got[0]["job_id"])
	require.Equal(t, "s1", got[0]["source_id"])
	require.EqualValues(t, 3, got[0]["documents"])
	for _, k := range []string{"trace_id", "span_id", "job_id", "source_id"} {
		require.NotContains(t, got[1], k)
	}
}

// A key the logger or the call already carries is not repeated.
func TestLogsDoNotRepeatKeys(t *testing.T) {
	t.Parallel()
	log, buf := jsonLogger()
	ctx := telemetry.WithLogAttrs(context.Background(), slog.String("job_id", "from-ctx"), slog.String("source_id", "s"))
	log.With("job_id", "from-with").InfoContext(ctx, "a")
	log.InfoContext(ctx, "b", "source_id", "from-call")
	require.Equal(t, 2, strings.Count(buf.String(), `"job_id"`), buf.String())
	require.Equal(t, 2, strings.Count(buf.String(), `"source_id"`), buf.String())
	got := lines(t, buf)
	require.Equal(t, "from-with", got[0]["job_id"])
	require.Equal(t, "s", got[0]["source_id"])
	require.Equal(t, "from-ctx", got[1]["job_id"])
	require.Equal(t, "from-call", got[1]["source_id"])
}

func TestGroupedLoggersAddNothing(t *testing.T) {
	t.Parallel()
	log, buf := jsonLogger()
	ctx := telemetry.WithLogAttrs(context.Background(), slog.String("job_id", "j"))
	log.WithGroup("g").InfoContext(ctx, "x", "k", "v")
	got := lines(t, buf)
	require.NotContains(t, got[0], "job_id")
	require.Equal(t, map[string]any{"k": "v"}, got[0]["g"])
	require.True(t, log.Enabled(ctx, slog.LevelInfo))
	require.False(t, log.Enabled(ctx, slog.LevelDebug), "levels pass through")
}

// Package telemetry holds the service's tracing and log correlation: the OpenTelemetry tracer
// provider with its OTLP exporter (off unless an endpoint is set), the W3C trace-context
// propagator, a slog handler that stamps trace, job and source ids on every record, and the
// decorators that time, count and trace calls to the embedder and the vector store.
//
// It knows the embed and vector seams and the metrics package, nothing about jobs or gRPC.
package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"
)

// Propagator is the one trace-context format the service reads and writes: W3C traceparent and
// tracestate, on gRPC metadata, HTTP headers and queue messages.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// TracingConfig says where spans go. The zero value turns tracing off.
type TracingConfig struct {
	// Endpoint is the OTLP collector: host:port, or an http(s):// URL (for http, a path other
	// than /v1/traces may be given). Empty turns tracing off. (PIPELINE_OTLP_ENDPOINT)
	Endpoint string
	// Protocol is grpc (OTLP/gRPC, usually port 4317) or http (OTLP/HTTP protobuf, usually
	// 4318). Defaults to grpc.
	Protocol string
	// Insecure sends spans without TLS when Endpoint is host:port (a URL's scheme decides for
	// itself).
	Insecure bool
	// CAFile is a PEM file of CAs to trust for the collector's certificate; empty means the
	// system's roots.
	CAFile string
	// Headers are sent with every export (a hosted collector's API key).
	Headers map[string]string
	// SampleRatio is the share of new traces recorded, 0 to 1; a trace continued from a caller
	// follows the caller's sampling decision.
	SampleRatio float64
	// ServiceName is the resource's service.name; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override it. Defaults to "pipeline".
	ServiceName string
	// Role is the pipeline.role resource attribute: server, worker or dev.
	Role string
}

// Enabled reports whether spans are exported at all.
func (c TracingConfig) Enabled() bool { return c.Endpoint != "" }

// Tracing is a tracer provider and what ends it.
type Tracing struct {
	// Provider makes tracers. With tracing off it is a no-op provider: spans cost next to nothing
	// and nothing is sent.
	Provider trace.TracerProvider
	// Enabled is true when spans are recorded and exported.
	Enabled bool
	// sdk is the real provider, nil when off.
	sdk *sdktrace.TracerProvider
}

// Shutdown sends the spans still buffered (within ctx) and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// Disabled is tracing off: a no-op provider.
func Disabled() *Tracing { return &Tracing{Provider: noop.NewTracerProvider()} }

// NewTracing builds the tracer provider of cfg: a no-op one when tracing is off, else an SDK
// provider with a batching OTLP exporter and parent-based ratio sampling. Exporting is
// asynchronous: an unreachable collector costs dropped spans (and a line in the log of the
// OpenTelemetry SDK), never a failed request. It does not dial the collector.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	if !cfg.Enabled() {
		return Disabled(), nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return NewTracingWith(ctx, cfg, sdktrace.WithBatcher(exp))
}

// NewTracingWith builds an SDK provider for cfg's sampling and resource with the given span
// processors or exporters (tests pass a tracetest.SpanRecorder).
func NewTracingWith(ctx context.Context, cfg TracingConfig, opts ...sdktrace.TracerProviderOption) (*Tracing, error) {
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts = append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}, opts...)
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{Provider: tp, Enabled: true, sdk: tp}, nil
}

func newResource(ctx context.Context, cfg TracingConfig) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = "pipeline"
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if cfg.Role != "" {
		attrs = append(attrs, attribute.String("pipeline.role", cfg.Role))
	}
	if host, err := os.Hostname(); err == nil {
		attrs = append(attrs, semconv.HostName(host))
	}
	// Later options win: the environment's OTEL_* settings override the defaults here.
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return res, nil
}

// exportTimeout bounds one export, so a slow collector cannot pile up batches.
const exportTimeout = 10 * time.Second

func newExporter(ctx context.Context, cfg TracingConfig) (sdktrace.SpanExporter, error) {
	isURL := strings.Contains(cfg.Endpoint, "://")
	var tlsCfg *tls.Config
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_OTLP_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("PIPELINE_OTLP_CA_FILE: %s holds no PEM certificate", cfg.CAFile)
		}
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	switch cfg.Protocol {
	case "", "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(exportTimeout)}
		if isURL {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		} else {
			opts = append(opts, otlptracegrpc.WithEndpoint(cfg.Endpoint))
			if cfg.Insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if tlsCfg != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_OTLP_ENDPOINT: %w", err)
		}
		return exp, nil
	case "http":
		opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(exportTimeout)}
		if isURL {
			u, err := url.Parse(cfg.Endpoint)
			if err != nil {
				return nil, fmt.Errorf("PIPELINE_OTLP_ENDPOINT: %w", err)
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(cfg.Endpoint))
			if cfg.Insecure {
				opts = append(opts, otlptracehttp.WithInsecure())
			}
		}
		if tlsCfg != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("PIPELINE_OTLP_ENDPOINT: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("PIPELINE_OTLP_PROTOCOL: want grpc or http, got %q", cfg.Protocol)
	}
}

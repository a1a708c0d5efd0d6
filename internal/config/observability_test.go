package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestObservabilitySettings(t *testing.T) {
	t.Parallel()
	d := Default()
	require.Empty(t, d.OTLPEndpoint, "tracing is off by default")
	require.Empty(t, d.MetricsAddr, "a worker serves no metrics by default")
	require.Equal(t, "grpc", d.OTLPProtocol)
	require.InDelta(t, 1.0, d.TraceSampleRatio, 0)

	c := Default()
	require.NoError(t, c.LoadEnv(env(map[string]string{
		"PIPELINE_METRICS_ADDR":       "0.0.0.0:9091",
		"PIPELINE_OTLP_ENDPOINT":      "https://collector.internal:4318",
		"PIPELINE_OTLP_PROTOCOL":      "http",
		"PIPELINE_OTLP_INSECURE":      "true",
		"PIPELINE_OTLP_CA_FILE":       "/etc/ca.pem",
		"PIPELINE_OTLP_HEADERS":       "x-api-key=s3cret-value, x-tenant = a=b",
		"PIPELINE_TRACE_SAMPLE_RATIO": "0.25",
	})))
	require.NoError(t, c.Validate())
	require.Equal(t, "0.0.0.0:9091", c.MetricsAddr)
	require.Equal(t, "https://collector.internal:4318", c.OTLPEndpoint)
	require.Equal(t, "http", c.OTLPProtocol)
	require.True(t, c.OTLPInsecure)
	require.Equal(t, "/etc/ca.pem", c.OTLPCAFile)
	require.InDelta(t, 0.25, c.TraceSampleRatio, 0)
	h, err := c.ParseOTLPHeaders()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"x-api-key": "s3cret-value", "x-tenant": "a=b"}, h)

	c.OTLPEndpoint = "127.0.0.1:4317"
	require.NoError(t, c.Validate(), "host:port works too")
}

func TestBadObservabilitySettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"metrics addr":   {map[string]string{"PIPELINE_METRICS_ADDR": "9091"}, "PIPELINE_METRICS_ADDR"},
		"endpoint":       {map[string]string{"PIPELINE_OTLP_ENDPOINT": "collector"}, "PIPELINE_OTLP_ENDPOINT"},
		"endpoint url":   {map[string]string{"PIPELINE_OTLP_ENDPOINT": "ftp://collector:21"}, "PIPELINE_OTLP_ENDPOINT"},
		"protocol":       {map[string]string{"PIPELINE_OTLP_PROTOCOL": "zipkin"}, "PIPELINE_OTLP_PROTOCOL"},
		"insecure":       {map[string]string{"PIPELINE_OTLP_INSECURE": "sometimes"}, "PIPELINE_OTLP_INSECURE"},
		"ratio too high": {map[string]string{"PIPELINE_TRACE_SAMPLE_RATIO": "1.5"}, "PIPELINE_TRACE_SAMPLE_RATIO"},
		"ratio word":     {map[string]string{"PIPELINE_TRACE_SAMPLE_RATIO": "half"}, "PIPELINE_TRACE_SAMPLE_RATIO"},
		"header":         {map[string]string{"PIPELINE_OTLP_HEADERS": "justavalue-s3cret"}, "PIPELINE_OTLP_HEADERS: entry 1"},
	} {
		c := Default()
		err := c.LoadEnv(env(tc.env))
		if err == nil {
			err = c.Validate()
		}
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		require.NotContains(t, err.Error(), "s3cret", "a header may hold a key: never echoed")
	}
}

package config

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	c := Default()
	require.NoError(t, c.Validate())
}

func TestEnvThenFlags(t *testing.T) {
	t.Parallel()
	c := Default()
	require.NoError(t, c.LoadEnv(env(map[string]string{
		"PIPELINE_GRPC_ADDR":   "127.0.0.1:19090",
		"PIPELINE_API_KEYS":    " aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb ,",
		"PIPELINE_MIGRATE":     "false",
		"PIPELINE_JOB_TIMEOUT": "2h",
	})))
	require.Equal(t, "127.0.0.1:19090", c.GRPCAddr)
	require.Equal(t, []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}, c.APIKeys)
	require.False(t, c.Migrate)
	require.Equal(t, 2*time.Hour, c.JobTimeout)

	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--grpc-addr=127.0.0.1:29090"}))
	require.Equal(t, "127.0.0.1:29090", c.GRPCAddr, "flag beats env")
	require.Equal(t, 2*time.Hour, c.JobTimeout, "env kept when no flag")
	require.NoError(t, c.Validate())
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"duration":  {map[string]string{"PIPELINE_JOB_TIMEOUT": "soon"}, "PIPELINE_JOB_TIMEOUT"},
		"bool":      {map[string]string{"PIPELINE_MIGRATE": "maybe"}, "PIPELINE_MIGRATE"},
		"db url":    {map[string]string{"PIPELINE_DATABASE_URL": "mysql://x"}, "PIPELINE_DATABASE_URL"},
		"redis url": {map[string]string{"PIPELINE_REDIS_URL": "http://x"}, "PIPELINE_REDIS_URL"},
		"addr":      {map[string]string{"PIPELINE_GRPC_ADDR": "nope"}, "PIPELINE_GRPC_ADDR"},
		"same addr": {map[string]string{"PIPELINE_HTTP_ADDR": "127.0.0.1:9090"}, "PIPELINE_HTTP_ADDR"},
		"short key": {map[string]string{"PIPELINE_API_KEYS": "short"}, "PIPELINE_API_KEYS"},
		"level":     {map[string]string{"PIPELINE_LOG_LEVEL": "loud"}, "PIPELINE_LOG_LEVEL"},
		"format":    {map[string]string{"PIPELINE_LOG_FORMAT": "xml"}, "PIPELINE_LOG_FORMAT"},
		"negative":  {map[string]string{"PIPELINE_SHUTDOWN_TIMEOUT": "-1s"}, "PIPELINE_SHUTDOWN_TIMEOUT"},
	} {
		c := Default()
		err := c.LoadEnv(env(tc.env))
		if err == nil {
			err = c.Validate()
		}
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
	}
}

func TestHelpHidesSecrets(t *testing.T) {
	t.Parallel()
	c := Default()
	require.NoError(t, c.LoadEnv(env(map[string]string{
		"PIPELINE_API_KEYS":     "supersecretkey-0123456789",
		"PIPELINE_DATABASE_URL": "postgres://u:hunter2secret@db/x",
	})))
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	help := fs.FlagUsages()
	require.NotContains(t, help, "supersecretkey")
	require.NotContains(t, help, "hunter2secret")
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, []string{"supersecretkey-0123456789"}, c.APIKeys, "the value itself is kept")
}

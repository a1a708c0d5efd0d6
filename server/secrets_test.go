package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/logtest"
	"github.com/pipeline-dev/pipeline/server"
)

// newLogBuffer is a logger at debug level, so nothing logged escapes the checks, and its output.
func newLogBuffer() (*slog.Logger, *logtest.Buffer) {
	buf := &logtest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	log, logged := newLogBuffer()
	const wrongKey = "wrong-secret-key-0123456789"
	b := setupDeps(t, func(d *server.Deps) { d.Log = log }, scopedKeys(), func(c *config.Config) {
		c.RateLimit, c.RateBurst = 0.01, 3 // so a call is refused by the rate limiter too
	})

	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	_, err := b.jobs.ListJobs(as(t, readKey), &pipelinev1.ListJobsRequest{})
	require.NoError(t, err)
	_, err = b.content.CreateSource(as(t, readKey), &pipelinev1.CreateSourceRequest{Name: "x"}) // no scope
	keep(err)
	_, err = b.jobs.ListJobs(as(t, wrongKey), &pipelinev1.ListJobsRequest{}) // bad key
	keep(err)
	_, err = b.jobs.GetJob(as(t, workerKey), &pipelinev1.GetJobRequest{JobId: "not-a-uuid"})
	keep(err)
	for range 4 { // the fourth call from one key goes over its burst
		_, err = b.jobs.GetJob(as(t, writeKey), &pipelinev1.GetJobRequest{JobId: "not-a-uuid"})
		keep(err)
	}
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	code, body := b.do(t, http.MethodGet, "/v1/jobs", "", "Authorization", "Bearer "+wrongKey)
	require.Equal(t, http.StatusUnauthorized, code)
	code, body2 := b.do(t, http.MethodPost, "/v1/sources", `{"name":"x"}`, "Authorization", "Bearer "+readKey)
	require.Equal(t, http.StatusForbidden, code)

	require.Contains(t, logged.String(), "PermissionDenied", "the refusals were logged")
	require.Contains(t, logged.String(), "Unauthenticated")
	for _, secret := range []string{readKey, writeKey, workerKey, adminKey, wrongKey} {
		require.NotContains(t, logged.String(), secret)
		require.NotContains(t, string(body)+string(body2), secret)
		for _, err := range errs {
			require.Error(t, err)
			require.NotContains(t, err.Error(), secret)
		}
	}
}

// TestConfigErrorsHideSecrets gives every secret setting a value and makes some setting bad;
// the error names the variable and shows no secret.
func TestConfigErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-0123456789secret"
	secrets := map[string]string{
		"PIPELINE_OPENAI_API_KEY":           secret,
		"PIPELINE_MILVUS_TOKEN":             "root:" + secret,
		"PIPELINE_FIRECRAWL_API_KEY":        secret,
		"PIPELINE_WORKER_API_KEY":           secret,
		"PIPELINE_FIRECRAWL_WEBHOOK_SECRET": secret,
		"PIPELINE_API_KEYS":                 secret,
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"api key with a bad scope":   {map[string]string{"PIPELINE_API_KEYS": secret + ":" + secret}, "PIPELINE_API_KEYS"},
		"api key too short":          {map[string]string{"PIPELINE_API_KEYS": secret + ",hunter2"}, "PIPELINE_API_KEYS"},
		"api key bad hash":           {map[string]string{"PIPELINE_API_KEYS": "sha256:" + secret}, "PIPELINE_API_KEYS"},
		"api key twice":              {map[string]string{"PIPELINE_API_KEYS": secret + "," + secret + ":read"}, "PIPELINE_API_KEYS"},
		"database url":               {map[string]string{"PIPELINE_DATABASE_URL": "mysql://u:" + secret + "@db/x"}, "PIPELINE_DATABASE_URL"},
		"database url unparseable":   {map[string]string{"PIPELINE_DATABASE_URL": "postgres://u:" + secret + "@[db/x"}, "PIPELINE_DATABASE_URL"},
		"redis url":                  {map[string]string{"PIPELINE_REDIS_URL": "http://:" + secret + "@x"}, "PIPELINE_REDIS_URL"},
		"openai url with password":   {map[string]string{"PIPELINE_EMBEDDER": "openai", "PIPELINE_OPENAI_BASE_URL": "ftp://u:" + secret + "@x"}, "PIPELINE_OPENAI_BASE_URL"},
		"firecrawl url with secret":  {map[string]string{"PIPELINE_FIRECRAWL_API_URL": "ftp://u:" + secret + "@x"}, "PIPELINE_FIRECRAWL_API_URL"},
		"webhook secret too short":   {map[string]string{"PIPELINE_FIRECRAWL_API_URL": "https://fc", "PIPELINE_FIRECRAWL_WEBHOOK_SECRET": "hunter2"}, "PIPELINE_FIRECRAWL_WEBHOOK_SECRET"},
		"other setting with secrets": {map[string]string{"PIPELINE_LOG_LEVEL": "loud"}, "PIPELINE_LOG_LEVEL"},
	} {
		env := map[string]string{}
		for k, v := range secrets {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		c := config.Default()
		err := c.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil {
			err = c.Validate()
		}
		require.Error(t, err, name)
		require.Contains(t, err.Error(), tc.want, name)
		require.NotContains(t, err.Error(), "hunter2", name)

		// The server refuses the same keys without showing them either.
		if strings.HasPrefix(tc.want, "PIPELINE_API_KEYS") {
			_, err := server.New(c, server.Deps{Log: slog.New(slog.DiscardHandler)})
			require.ErrorContains(t, err, "PIPELINE_API_KEYS", name)
			require.NotContains(t, err.Error(), "hunter2", name)
		}
	}
}

package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	b := setup(t, func(c *config.Config) { c.MaxMessageBytes = limit })
	src := b.createSource(t)
	doc := func(size int) *pipelinev1.DocumentInput {
		return &pipelinev1.DocumentInput{Uri: "big.md", ContentType: "text/markdown", Content: strings.Repeat("x", size)}
	}

	t.Run("gRPC", func(t *testing.T) {
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{
			SourceId: src.GetSourceId(), Documents: []*pipelinev1.DocumentInput{doc(limit + 1)},
		})
		st := requireCode(t, err, codes.ResourceExhausted, "")
		require.Contains(t, st.Message(), "larger than max")
		_, err = b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{
			SourceId: src.GetSourceId(), Documents: []*pipelinev1.DocumentInput{doc(limit / 2)},
		})
		require.NoError(t, err, "under the limit")
	})

	body := func(size int) string {
		return fmt.Sprintf(`{"documents":[{"uri":"big.md","content_type":"text/markdown","content":%q}]}`, strings.Repeat("x", size))
	}
	path := "/v1/sources/" + src.GetSourceId() + "/documents"
	requireTooLarge := func(t *testing.T, code int, data []byte) {
		t.Helper()
		require.Equal(t, http.StatusRequestEntityTooLarge, code, "body: %s", data)
		e := decodeError(t, data)
		require.Equal(t, int(codes.ResourceExhausted), e.Code)
		require.Contains(t, e.Message, "PIPELINE_MAX_MESSAGE_BYTES")
	}

	t.Run("REST with Content-Length", func(t *testing.T) {
		code, data := b.do(t, http.MethodPost, path, body(limit+1))
		requireTooLarge(t, code, data)
		code, data = b.do(t, http.MethodPost, path, body(limit/2))
		require.Equal(t, http.StatusOK, code, "under the limit: %s", data)
	})

	t.Run("REST chunked", func(t *testing.T) {
		req, err := http.NewRequestWithContext(tctx(t), http.MethodPost, b.baseURL+path, strings.NewReader(body(limit+1)))
		require.NoError(t, err)
		req.ContentLength = -1 // unknown: the client sends the body chunked, so it is cut while read
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.http.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		requireTooLarge(t, resp.StatusCode, data)
	})
}

func TestRPCDeadline(t *testing.T) {
	t.Parallel()
	// A deadline that has passed before any handler runs: calls that bring none fail with it.
	b := setup(t, func(c *config.Config) { c.RPCTimeout = time.Nanosecond })
	job := b.pendingJob(t, 1).GetJob() // tctx gives these calls a deadline of their own

	_, err := b.jobs.GetJob(t.Context(), &pipelinev1.GetJobRequest{JobId: job.GetJobId()})
	requireCode(t, err, codes.DeadlineExceeded, "")
	code, body := b.do(t, http.MethodGet, "/v1/jobs/"+job.GetJobId(), "")
	require.Equal(t, http.StatusGatewayTimeout, code, "body: %s", body)

	// The client's own deadline wins.
	_, err = b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: job.GetJobId()})
	require.NoError(t, err)

	// Streams have no deadline.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := b.jobs.WatchJob(ctx, &pipelinev1.WatchJobRequest{JobId: job.GetJobId()})
	require.NoError(t, err)
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, job.GetJobId(), first.GetJob().GetJobId())
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// A rate so low that no token comes back during the test, so the counts are exact.
	slow := func(c *config.Config) { c.RateLimit, c.RateBurst = 0.01, 5 }

	t.Run("per key", func(t *testing.T) {
		t.Parallel()
		b := setup(t, scopedKeys(), slow)
		for i := range 5 {
			_, err := b.jobs.ListJobs(as(t, writeKey), &pipelinev1.ListJobsRequest{})
			require.NoError(t, err, "call %d", i+1)
		}
		_, err := b.jobs.ListJobs(as(t, writeKey), &pipelinev1.ListJobsRequest{})
		st := requireCode(t, err, codes.ResourceExhausted, "")
		require.Contains(t, st.Message(), "rate limit")
		var retry *errdetails.RetryInfo
		for _, d := range st.Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		require.NotNil(t, retry, "a RetryInfo says when to come back")
		require.Positive(t, retry.GetRetryDelay().AsDuration())

		// Another key has its own bucket.
		_, err = b.jobs.ListJobs(as(t, writeKey2), &pipelinev1.ListJobsRequest{})
		require.NoError(t, err)

		// REST shares the key's bucket: 429.
		code, body := b.do(t, http.MethodGet, "/v1/jobs", "", "Authorization", "Bearer "+writeKey)
		require.Equal(t, http.StatusTooManyRequests, code, "body: %s", body)
		require.Equal(t, int(codes.ResourceExhausted), decodeError(t, body).Code)

		// A stream counts once, when it opens.
		for range 4 {
			_, err = b.jobs.ListJobs(as(t, readKey), &pipelinev1.ListJobsRequest{})
			require.NoError(t, err)
		}
		stream, err := b.jobs.WatchJob(as(t, readKey), &pipelinev1.WatchJobRequest{JobId: uuid.NewString()})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.NotFound, "") // the fifth call got through the limiter
		stream, err = b.jobs.WatchJob(as(t, readKey), &pipelinev1.WatchJobRequest{JobId: uuid.NewString()})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.ResourceExhausted, "")

		// Bad keys spend no one's tokens.
		_, err = b.jobs.ListJobs(as(t, unknownKey), &pipelinev1.ListJobsRequest{})
		requireCode(t, err, codes.Unauthenticated, "")
	})

	t.Run("per address without keys", func(t *testing.T) {
		t.Parallel()
		b := setup(t, slow)
		for range 3 {
			_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
			require.NoError(t, err)
		}
		// REST from the same address shares the bucket, whatever X-Forwarded-For the client claims.
		code, body := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Forwarded-For", "203.0.113.7")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", "X-Forwarded-For", "203.0.113.8")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", "X-Forwarded-For", "203.0.113.9")
		require.Equal(t, http.StatusTooManyRequests, code, "body: %s", body)
		_, err := b.jobs.ListJobs(metadata.AppendToOutgoingContext(tctx(t), "x-forwarded-for", "203.0.113.10"), &pipelinev1.ListJobsRequest{})
		requireCode(t, err, codes.ResourceExhausted, "")
	})
}

package server_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
)

// What a REST call's handler sees is what a gRPC call's handler sees: a context of its own, with
// the caller's metadata as incoming metadata only. The gateway's outgoing metadata (the caller's
// API key among it) must not ride along on the calls the handler makes: here Milvus, which
// refuses a call whose authorization is not exactly its own token.
func TestRESTHandlersGetAContextOfTheirOwn(t *testing.T) {
	t.Parallel()
	const token = "milvus-user:milvus-password"
	fake := milvusfake.New(t, milvusfake.WithToken(token))
	b := setup(t, scopedKeys(), func(c *config.Config) {
		c.VectorStore, c.MilvusAddr, c.MilvusToken = "milvus", fake.Addr(), token
	})
	searches := fake.Calls("Search")
	code, body := b.do(t, http.MethodPost, "/v1/search", `{"query":"anything","top_k":3}`, "Authorization", "Bearer "+readKey)
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	require.Greater(t, fake.Calls("Search"), searches, "the search reached Milvus")
}

// A REST caller may bound its call with a Grpc-Timeout header, as a gRPC caller bounds it with
// its deadline.
func TestRESTCallerDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.pendingJob(t, 1).GetJob()
	path := "/v1/jobs/" + job.GetJobId()

	code, body := b.do(t, http.MethodGet, path, "", "Grpc-Timeout", "1n")
	require.Equal(t, http.StatusGatewayTimeout, code, "body: %s", body)
	require.Equal(t, int(codes.DeadlineExceeded), decodeError(t, body).Code)

	code, body = b.do(t, http.MethodGet, path, "", "Grpc-Timeout", "30S")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	code, body = b.do(t, http.MethodGet, "/v1/jobs/"+uuid.NewString(), "", "Grpc-Timeout", "30S")
	require.Equal(t, http.StatusNotFound, code, "body: %s", body)
}

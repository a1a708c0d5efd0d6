package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/server"
)

// --- 1. gRPC errors

func TestGRPCErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("GetJob bad id", func(t *testing.T) {
		_, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: "not-a-uuid"})
		requireCode(t, err, codes.InvalidArgument, "job_id")
	})
	t.Run("GetJob unknown id", func(t *testing.T) {
		_, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: uuid.NewString()})
		requireCode(t, err, codes.NotFound, "")
	})
	t.Run("ListJobs page_size too large", func(t *testing.T) {
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{PageSize: 5000})
		requireCode(t, err, codes.InvalidArgument, "page_size")
	})
	t.Run("ListJobs garbage page_token", func(t *testing.T) {
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{PageToken: "garbage!"})
		requireCode(t, err, codes.InvalidArgument, "page_token")
	})
	t.Run("ListJobs page_token for other filters", func(t *testing.T) {
		resp := b.pendingJob(t, 1)
		b.ingest(t, resp.GetJob().GetSourceId(), 1)
		page, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{PageSize: 1})
		require.NoError(t, err)
		require.NotEmpty(t, page.GetNextPageToken())
		_, err = b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{
			PageSize: 1, PageToken: page.GetNextPageToken(), Status: pipelinev1.JobStatus_JOB_STATUS_COMPLETED,
		})
		requireCode(t, err, codes.InvalidArgument, "page_token")
	})
	t.Run("ListJobs undefined enum", func(t *testing.T) {
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{Status: pipelinev1.JobStatus(99)})
		requireCode(t, err, codes.InvalidArgument, "status")
		_, err = b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{Type: pipelinev1.JobType(99)})
		requireCode(t, err, codes.InvalidArgument, "type")
	})
	t.Run("CreateSource bad url", func(t *testing.T) {
		_, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "not a url"})
		requireCode(t, err, codes.InvalidArgument, "url")
	})
	t.Run("CreateSource web source refused by the SSRF guard", func(t *testing.T) {
		// Loopback is not allowed here, so the crawl fails before any connection is made.
		resp, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "http://127.0.0.1:1/docs"})
		require.NoError(t, err)
		require.Equal(t, pipelinev1.JobType_JOB_TYPE_CRAWL, resp.GetJob().GetType())
		var job *pipelinev1.Job
		require.Eventually(t, func() bool {
			got, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: resp.GetJob().GetJobId()})
			require.NoError(t, err)
			job = got.GetJob()
			return job.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_FAILED
		}, waitTimeout, 10*time.Millisecond)
		require.Contains(t, job.GetError(), "127.0.0.1")
		require.Eventually(t, func() bool { // the source follows its job a moment later
			src, err := b.content.GetSource(tctx(t), &pipelinev1.GetSourceRequest{SourceId: resp.GetSource().GetSourceId()})
			require.NoError(t, err)
			return src.GetSource().GetStatus() == pipelinev1.SourceStatus_SOURCE_STATUS_FAILED
		}, waitTimeout, 10*time.Millisecond)
		_, err = b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "https://example.com/", Crawler: pipelinev1.Crawler_CRAWLER_FIRECRAWL})
		st := requireCode(t, err, codes.FailedPrecondition, "")
		require.Contains(t, st.Message(), "PIPELINE_FIRECRAWL_API_URL", "without Firecrawl configured")
	})
	t.Run("Search", func(t *testing.T) {
		resp, err := b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "hello"})
		require.NoError(t, err)
		require.Empty(t, resp.GetResults(), "nothing is indexed yet")
		_, err = b.search.Search(tctx(t), &pipelinev1.SearchRequest{})
		requireCode(t, err, codes.InvalidArgument, "query")
		_, err = b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "x", TopK: 1000})
		requireCode(t, err, codes.InvalidArgument, "top_k")
		_, err = b.search.Search(tctx(t), &pipelinev1.SearchRequest{Query: "x", SourceIds: []string{"nope"}})
		requireCode(t, err, codes.InvalidArgument, "source_ids[0]")
	})
	t.Run("IngestDocuments no documents", func(t *testing.T) {
		src := b.createSource(t)
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId()})
		requireCode(t, err, codes.InvalidArgument, "documents")
	})
	t.Run("IngestDocuments unknown source", func(t *testing.T) {
		src := uuid.NewString()
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src, Documents: docInputs(2)})
		requireCode(t, err, codes.NotFound, "")
		var docs, jobCount int
		require.NoError(t, b.pool.QueryRow(tctx(t), `SELECT count(*) FROM documents WHERE source_id = $1`, src).Scan(&docs))
		require.NoError(t, b.pool.QueryRow(tctx(t), `SELECT count(*) FROM jobs WHERE source_id = $1`, src).Scan(&jobCount))
		require.Zero(t, docs)
		require.Zero(t, jobCount)
	})
	t.Run("RefreshSource upload source", func(t *testing.T) {
		src := b.createSource(t)
		_, err := b.content.RefreshSource(tctx(t), &pipelinev1.RefreshSourceRequest{SourceId: src.GetSourceId()})
		requireCode(t, err, codes.FailedPrecondition, "")
	})
	t.Run("ListDocuments unknown source", func(t *testing.T) {
		_, err := b.content.ListDocuments(tctx(t), &pipelinev1.ListDocumentsRequest{SourceId: uuid.NewString()})
		requireCode(t, err, codes.NotFound, "")
	})
	t.Run("ListJobDocuments unknown job", func(t *testing.T) {
		_, err := b.jobs.ListJobDocuments(tctx(t), &pipelinev1.ListJobDocumentsRequest{JobId: uuid.NewString()})
		requireCode(t, err, codes.NotFound, "")
	})
}

// --- 2. REST

func TestREST(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("list jobs", func(t *testing.T) {
		job := b.pendingJob(t, 1).GetJob()
		code, body := b.do(t, http.MethodGet, "/v1/jobs", "")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &raw))
		var list []map[string]any
		require.NoError(t, json.Unmarshal(raw["jobs"], &list), "jobs must be an array: %s", body)
		require.NotEmpty(t, list)
		require.Equal(t, job.GetJobId(), list[0]["job_id"], "snake_case field names, newest first")
		var resp pipelinev1.ListJobsResponse
		decodeProto(t, body, &resp)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, resp.GetJobs()[0].GetStatus())
	})
	t.Run("get job bad id", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/v1/jobs/not-a-uuid", "")
		require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
		e := decodeError(t, body)
		require.Equal(t, int(codes.InvalidArgument), e.Code)
		require.Contains(t, e.Message, "job_id")
	})
	t.Run("get job unknown id", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/v1/jobs/"+uuid.NewString(), "")
		require.Equal(t, http.StatusNotFound, code, "body: %s", body)
		require.Equal(t, int(codes.NotFound), decodeError(t, body).Code)
	})
	t.Run("get job", func(t *testing.T) {
		resp := b.pendingJob(t, 2)
		code, body := b.do(t, http.MethodGet, "/v1/jobs/"+resp.GetJob().GetJobId(), "")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		var got pipelinev1.GetJobResponse
		decodeProto(t, body, &got)
		require.Equal(t, resp.GetJob().GetJobId(), got.GetJob().GetJobId())
		require.EqualValues(t, 2, got.GetJob().GetProcessing().GetDocumentCount())
	})
	t.Run("bad enum in query", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/v1/jobs?status=BOGUS", "")
		require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
		require.Equal(t, int(codes.InvalidArgument), decodeError(t, body).Code)
	})
	t.Run("enum name in query", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/v1/jobs?status=JOB_STATUS_COMPLETED", "")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		var got pipelinev1.ListJobsResponse
		decodeProto(t, body, &got)
		require.Empty(t, got.GetJobs())
	})
	t.Run("unknown JSON field", func(t *testing.T) {
		code, body := b.do(t, http.MethodPost, "/v1/sources", `{"name":"x","no_such_field":1}`)
		require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
		require.Equal(t, int(codes.InvalidArgument), decodeError(t, body).Code)
	})
	t.Run("healthz", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
	})
	t.Run("readyz", func(t *testing.T) {
		code, r := b.readyz(t)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ready", r.Status)
		require.Equal(t, map[string]string{"postgres": "ok", "redis": "ok", "vector_store": "ok", "embedder": "ok"}, r.statuses())
	})
	t.Run("openapi", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/openapi.json", "")
		require.Equal(t, http.StatusOK, code)
		var doc struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Contains(t, doc.Paths, "/v1/jobs")
		require.Contains(t, doc.Paths, "/v1/jobs/{job_id}:watch")
	})
	t.Run("failed precondition is 400", func(t *testing.T) {
		id := b.completedJob(t)
		code, body := b.do(t, http.MethodPost, "/v1/jobs/"+id.String()+":cancel", "{}")
		require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
		require.Equal(t, int(codes.FailedPrecondition), decodeError(t, body).Code)
	})
}

// --- 3. auth

func TestAuth(t *testing.T) {
	t.Parallel()
	const key1, key2 = "first-key-0123456789", "second-key-0123456789"
	b := setup(t, withAPIKeys(key1, key2))
	call := func(t *testing.T, auth ...string) error {
		c := tctx(t)
		if len(auth) > 0 {
			c = metadata.AppendToOutgoingContext(c, "authorization", auth[0])
		}
		_, err := b.jobs.ListJobs(c, &pipelinev1.ListJobsRequest{})
		return err
	}
	t.Run("gRPC", func(t *testing.T) {
		requireCode(t, call(t), codes.Unauthenticated, "")
		requireCode(t, call(t, "Bearer wrong-key-0123456789"), codes.Unauthenticated, "")
		requireCode(t, call(t, key1), codes.Unauthenticated, "") // no scheme
		requireCode(t, call(t, "Basic "+key1), codes.Unauthenticated, "")
		require.NoError(t, call(t, "Bearer "+key1))
		require.NoError(t, call(t, "bearer "+key2), "the second key works too (rotation)")
	})
	t.Run("auth before validation", func(t *testing.T) {
		_, err := b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: "not-a-uuid"})
		requireCode(t, err, codes.Unauthenticated, "")
	})
	t.Run("stream", func(t *testing.T) {
		stream, err := b.jobs.WatchJob(tctx(t), &pipelinev1.WatchJobRequest{JobId: uuid.NewString()})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.Unauthenticated, "")
	})
	t.Run("REST", func(t *testing.T) {
		code, body := b.do(t, http.MethodGet, "/v1/jobs", "")
		require.Equal(t, http.StatusUnauthorized, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", "Authorization", "Bearer nope-nope-nope-nope")
		require.Equal(t, http.StatusUnauthorized, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", "Authorization", "Bearer "+key1)
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		code, body = b.do(t, http.MethodGet, "/v1/jobs", "", "Authorization", "Bearer "+key2)
		require.Equal(t, http.StatusOK, code, "body: %s", body)
	})
	t.Run("health is open", func(t *testing.T) {
		resp, err := b.health.Check(tctx(t), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
		code, _ := b.do(t, http.MethodGet, "/healthz", "")
		require.Equal(t, http.StatusOK, code)
		code, _ = b.do(t, http.MethodGet, "/readyz", "")
		require.Equal(t, http.StatusOK, code)
		code, _ = b.do(t, http.MethodGet, "/openapi.json", "")
		require.Equal(t, http.StatusOK, code)
	})
	t.Run("reflection is open", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(b.conn).ServerReflectionInfo(tctx(t))
		require.NoError(t, err)
		require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}))
		resp, err := stream.Recv()
		require.NoError(t, err)
		require.NoError(t, stream.CloseSend())
		var names []string
		for _, s := range resp.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		for _, want := range []string{
			"pipeline.v1.JobService", "pipeline.v1.ContentService", "pipeline.v1.SearchService",
			"pipeline.v1.WorkerService", "grpc.health.v1.Health",
		} {
			require.Contains(t, names, want)
		}
	})
}

func TestAuthOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{})
	require.NoError(t, err)
	// A key sent to a server without keys is ignored, not refused.
	_, err = b.jobs.ListJobs(metadata.AppendToOutgoingContext(tctx(t), "authorization", "Bearer whatever"), &pipelinev1.ListJobsRequest{})
	require.NoError(t, err)
	code, body := b.do(t, http.MethodGet, "/v1/jobs", "")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
}

// --- 4. full flow

func TestIngestFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := tctx(t)

	// An upload source, over REST.
	code, body := b.do(t, http.MethodPost, "/v1/sources", `{"name":"handbook"}`)
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	var created pipelinev1.CreateSourceResponse
	decodeProto(t, body, &created)
	src := created.GetSource()
	require.NotEmpty(t, src.GetSourceId())
	require.Equal(t, "handbook", src.GetName())
	require.Empty(t, src.GetUrl())
	require.Equal(t, pipelinev1.SourceStatus_SOURCE_STATUS_PENDING, src.GetStatus())

	// Three documents, over gRPC.
	first := b.ingest(t, src.GetSourceId(), 3)
	require.Len(t, first.GetDocuments(), 3)
	require.EqualValues(t, 3, first.GetChangedCount())
	job1 := first.GetJob()
	require.Equal(t, pipelinev1.JobType_JOB_TYPE_PROCESS, job1.GetType())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, job1.GetStatus())
	require.Equal(t, src.GetSourceId(), job1.GetSourceId())
	require.EqualValues(t, 3, job1.GetProcessing().GetDocumentCount())
	for i, d := range first.GetDocuments() {
		require.Equal(t, docInputs(3)[i].GetUri(), d.GetUri(), "documents come back in input order")
		require.Empty(t, d.GetContent(), "ingest answers summaries, without content")
		require.NotEmpty(t, d.GetContentHash())
	}

	got, err := b.content.GetSource(c, &pipelinev1.GetSourceRequest{SourceId: src.GetSourceId()})
	require.NoError(t, err)
	require.Equal(t, pipelinev1.SourceStatus_SOURCE_STATUS_PROCESSING, got.GetSource().GetStatus())
	require.EqualValues(t, 3, got.GetSource().GetDocumentCount())

	// The same documents again change nothing but still make a job.
	second := b.ingest(t, src.GetSourceId(), 3)
	require.Zero(t, second.GetChangedCount())
	require.Equal(t, docIDs(first.GetDocuments()), docIDs(second.GetDocuments()))
	job2 := second.GetJob()
	require.NotEqual(t, job1.GetJobId(), job2.GetJobId())

	gotJob, err := b.jobs.GetJob(c, &pipelinev1.GetJobRequest{JobId: job1.GetJobId()})
	require.NoError(t, err)
	require.Equal(t, job1.GetJobId(), gotJob.GetJob().GetJobId())
	require.Equal(t, job1.GetVersion(), gotJob.GetJob().GetVersion())

	// A job on another source must not show up in the filtered list.
	b.pendingJob(t, 1)
	list, err := b.jobs.ListJobs(c, &pipelinev1.ListJobsRequest{SourceId: src.GetSourceId()})
	require.NoError(t, err)
	require.Equal(t, []string{job2.GetJobId(), job1.GetJobId()}, jobIDs(list.GetJobs()), "newest first")
	require.Empty(t, list.GetNextPageToken())

	// Pagination walks both, one at a time.
	var walked []string
	token := ""
	for range 5 {
		page, err := b.jobs.ListJobs(c, &pipelinev1.ListJobsRequest{SourceId: src.GetSourceId(), PageSize: 1, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetJobs()), 1)
		walked = append(walked, jobIDs(page.GetJobs())...)
		token = page.GetNextPageToken()
		if token == "" {
			break
		}
	}
	require.Equal(t, []string{job2.GetJobId(), job1.GetJobId()}, walked)

	// Per-document results of the first job.
	results, err := b.jobs.ListJobDocuments(c, &pipelinev1.ListJobDocumentsRequest{JobId: job1.GetJobId()})
	require.NoError(t, err)
	require.Len(t, results.GetResults(), 3)
	var resultDocs []string
	for _, r := range results.GetResults() {
		require.Equal(t, pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_PENDING, r.GetStatus())
		resultDocs = append(resultDocs, r.GetDocumentId())
	}
	require.ElementsMatch(t, docIDs(first.GetDocuments()), resultDocs)
	require.True(t, slices.IsSorted(resultDocs), "results come in document id order")

	// Documents: the list without content, GetDocument with it.
	docs, err := b.content.ListDocuments(c, &pipelinev1.ListDocumentsRequest{SourceId: src.GetSourceId()})
	require.NoError(t, err)
	require.ElementsMatch(t, docIDs(first.GetDocuments()), docIDs(docs.GetDocuments()))
	for _, d := range docs.GetDocuments() {
		require.Empty(t, d.GetContent())
	}
	in := docInputs(3)[1]
	doc, err := b.content.GetDocument(c, &pipelinev1.GetDocumentRequest{DocumentId: first.GetDocuments()[1].GetDocumentId()})
	require.NoError(t, err)
	require.Equal(t, in.GetContent(), doc.GetDocument().GetContent())
	require.Equal(t, in.GetUri(), doc.GetDocument().GetUri())
	require.Equal(t, in.GetTitle(), doc.GetDocument().GetTitle())
	require.Equal(t, in.GetMetadata(), doc.GetDocument().GetMetadata())
	require.EqualValues(t, len(in.GetContent()), doc.GetDocument().GetSizeBytes())

	// The same document over REST.
	code, body = b.do(t, http.MethodGet, "/v1/documents/"+first.GetDocuments()[1].GetDocumentId(), "")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	var restDoc pipelinev1.GetDocumentResponse
	decodeProto(t, body, &restDoc)
	require.Equal(t, in.GetContent(), restDoc.GetDocument().GetContent())
}

func docIDs(docs []*pipelinev1.Document) []string {
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.GetDocumentId())
	}
	return out
}

func jobIDs(list []*pipelinev1.Job) []string {
	out := make([]string, 0, len(list))
	for _, j := range list {
		out = append(out, j.GetJobId())
	}
	return out
}

// --- 5. WatchJob

func TestWatchJob(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("follows the job to completion", func(t *testing.T) {
		resp := b.pendingJob(t, 3)
		ch := b.watch(t, resp.GetJob().GetJobId())
		snap := nextJob(t, ch)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, snap.GetStatus())
		require.Equal(t, resp.GetJob().GetVersion(), snap.GetVersion())

		require.NoError(t, runWorker(tctx(t), b, resp))

		seen := untilStatus(t, ch, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, snap.GetVersion())
		last := seen[len(seen)-1]
		require.EqualValues(t, 2, last.GetProcessing().GetProcessedCount())
		require.EqualValues(t, 1, last.GetProcessing().GetErrorCount())
		require.EqualValues(t, 3+5, last.GetProcessing().GetChunkCount())
		require.NotNil(t, last.GetFinishTime())
		end := next(t, ch)
		require.ErrorIs(t, end.err, io.EOF, "the stream ends after the terminal state")
	})

	t.Run("terminal job sends one message", func(t *testing.T) {
		id := b.completedJob(t)
		ch := b.watch(t, id.String())
		j := nextJob(t, ch)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, j.GetStatus())
		require.ErrorIs(t, next(t, ch).err, io.EOF)
	})

	t.Run("unknown job", func(t *testing.T) {
		ch := b.watch(t, uuid.NewString())
		requireCode(t, next(t, ch).err, codes.NotFound, "")
	})

	t.Run("bad id", func(t *testing.T) {
		ch := b.watch(t, "nope")
		requireCode(t, next(t, ch).err, codes.InvalidArgument, "job_id")
	})
}

// runWorker drives the job of resp to COMPLETED through the Manager, as a worker would: two
// documents succeed with 3 and 5 chunks, the third fails permanently.
func runWorker(c context.Context, b *testBundle, resp *pipelinev1.IngestDocumentsResponse) error {
	id := uuid.MustParse(resp.GetJob().GetJobId())
	docs := resp.GetDocuments()
	if _, err := b.Jobs.Start(c, id); err != nil {
		return err
	}
	results := []jobs.DocumentResultUpdate{
		{DocumentID: uuid.MustParse(docs[0].GetDocumentId()), Status: jobs.DocSucceeded, ChunkCount: 3, Attempts: 1},
		{DocumentID: uuid.MustParse(docs[1].GetDocumentId()), Status: jobs.DocSucceeded, ChunkCount: 5, Attempts: 1},
		{DocumentID: uuid.MustParse(docs[2].GetDocumentId()), Status: jobs.DocFailed, Attempts: 1,
			LastError: "unparseable", ErrorKind: jobs.KindPermanent},
	}
	for _, r := range results { // one report per document, so each is its own version
		if _, err := b.Jobs.RecordResults(c, jobs.RecordParams{JobID: id, Results: []jobs.DocumentResultUpdate{r}}); err != nil {
			return err
		}
	}
	_, err := b.Jobs.Complete(c, id)
	return err
}

func TestWatchJobREST(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.pendingJob(t, 3)

	httpResp := b.send(t, http.MethodGet, "/v1/jobs/"+resp.GetJob().GetJobId()+":watch", "")
	defer httpResp.Body.Close()
	require.Equal(t, http.StatusOK, httpResp.StatusCode)

	lines := bufio.NewReader(httpResp.Body)
	readJob := func() *pipelinev1.Job {
		t.Helper()
		line, err := lines.ReadBytes('\n')
		require.NoError(t, err, "partial line: %q", line)
		var msg struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		require.NoError(t, json.Unmarshal(line, &msg), "line: %s", line)
		require.Nil(t, msg.Error, "line: %s", line)
		var w pipelinev1.WatchJobResponse
		require.NoError(t, protojson.Unmarshal(msg.Result, &w), "line: %s", line)
		return w.GetJob()
	}

	snap := readJob()
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, snap.GetStatus())

	done := make(chan error, 1)
	workerCtx := tctx(t)
	go func() { done <- runWorker(workerCtx, b, resp) }()

	last := snap.GetVersion()
	var j *pipelinev1.Job
	for j == nil || j.GetStatus() != pipelinev1.JobStatus_JOB_STATUS_COMPLETED {
		j = readJob()
		require.Greater(t, j.GetVersion(), last)
		last = j.GetVersion()
	}
	require.EqualValues(t, 8, j.GetProcessing().GetChunkCount())
	require.NoError(t, <-done)
	rest, err := io.ReadAll(lines)
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(rest)), "nothing after the terminal state")
}

// TestWatchJobOtherReplica checks that a change made and announced by another replica wakes a
// watcher through Redis. Polling is set to a minute and the change is written by a Manager with
// no notifier, so the only way the watcher can hear of it in time is the other replica's event.
func TestWatchJobOtherReplica(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.WatchPollInterval = time.Minute })
	require.NoError(t, b.deps.Bus.Ready(tctx(t)), "the server's bus listens on Redis")

	// The other replica: its own Manager (no notifier) and bus on the same database and prefix.
	other, err := jobs.NewManager(jobs.NewPgStore(b.pool), jobs.Config{})
	require.NoError(t, err)
	otherBus := b.newBus(t)

	resp := b.pendingJob(t, 1)
	id := uuid.MustParse(resp.GetJob().GetJobId())
	ch := b.watch(t, id.String())
	snap := nextJob(t, ch)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, snap.GetStatus())

	started, err := other.Start(tctx(t), id)
	require.NoError(t, err)
	otherBus.Publish(tctx(t), id, started.Version)
	j := nextJob(t, ch)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS, j.GetStatus())
	require.Equal(t, started.Version, j.GetVersion())

	cancelled, err := other.Cancel(tctx(t), id)
	require.NoError(t, err)
	otherBus.Publish(tctx(t), id, cancelled.Version)
	j = nextJob(t, ch)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, j.GetStatus())
	require.ErrorIs(t, next(t, ch).err, io.EOF)
}

// --- 6. cancel and retry

func TestCancelAndRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.pendingJob(t, 2)
	id := resp.GetJob().GetJobId()
	for range 2 { // the second cancel is a no-op, not an error
		code, body := b.do(t, http.MethodPost, "/v1/jobs/"+id+":cancel", "{}")
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		var got pipelinev1.CancelJobResponse
		decodeProto(t, body, &got)
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, got.GetJob().GetStatus())
		require.Equal(t, resp.GetJob().GetVersion()+1, got.GetJob().GetVersion())
	}

	retry, err := b.jobs.RetryJob(tctx(t), &pipelinev1.RetryJobRequest{JobId: id})
	require.NoError(t, err)
	nj := retry.GetJob()
	require.NotEqual(t, id, nj.GetJobId())
	require.Equal(t, id, nj.GetRetryOfJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, nj.GetStatus())
	require.EqualValues(t, 2, nj.GetProcessing().GetDocumentCount())

	// A job is retried once; retrying it again (here over REST) is AlreadyExists, HTTP 409.
	code, body := b.do(t, http.MethodPost, "/v1/jobs/"+id+":retry", "{}")
	require.Equal(t, http.StatusConflict, code, "body: %s", body)
	require.Equal(t, int(codes.AlreadyExists), decodeError(t, body).Code)

	// Retry over REST, of another cancelled job.
	other := b.pendingJob(t, 1).GetJob().GetJobId()
	_, err = b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: other})
	require.NoError(t, err)
	code, body = b.do(t, http.MethodPost, "/v1/jobs/"+other+":retry", "{}")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	var restRetry pipelinev1.RetryJobResponse
	decodeProto(t, body, &restRetry)
	require.Equal(t, other, restRetry.GetJob().GetRetryOfJobId())

	_, err = b.jobs.RetryJob(tctx(t), &pipelinev1.RetryJobRequest{JobId: nj.GetJobId()})
	requireCode(t, err, codes.FailedPrecondition, "")

	_, err = b.jobs.CancelJob(tctx(t), &pipelinev1.CancelJobRequest{JobId: uuid.NewString()})
	requireCode(t, err, codes.NotFound, "")
}

// --- 7. DeleteSource

func TestDeleteSource(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.pendingJob(t, 2)
	jobID, srcID := resp.GetJob().GetJobId(), resp.GetJob().GetSourceId()
	ch := b.watch(t, jobID)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, nextJob(t, ch).GetStatus())

	_, err := b.content.DeleteSource(tctx(t), &pipelinev1.DeleteSourceRequest{SourceId: srcID})
	require.NoError(t, err)

	// The watcher must end promptly. DeleteSource cancels the job before deleting it, but the
	// watcher re-reads the job after the cancel's notice and races the delete: when the delete
	// wins (about one run in five here), the job is gone and the stream ends with NotFound
	// instead of showing CANCELLED, saying the job was deleted with its source. Both endings
	// tell the watcher the truth; see docs/decisions/0002-jobs-and-watch.md.
	m := next(t, ch)
	if m.err == nil {
		require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, m.job.GetStatus())
		require.ErrorIs(t, next(t, ch).err, io.EOF)
	} else {
		st := requireCode(t, m.err, codes.NotFound, "")
		require.Contains(t, st.Message(), "deleted with its source")
	}

	_, err = b.content.GetSource(tctx(t), &pipelinev1.GetSourceRequest{SourceId: srcID})
	requireCode(t, err, codes.NotFound, "")
	_, err = b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: jobID})
	requireCode(t, err, codes.NotFound, "")
	for _, d := range resp.GetDocuments() {
		_, err = b.content.GetDocument(tctx(t), &pipelinev1.GetDocumentRequest{DocumentId: d.GetDocumentId()})
		requireCode(t, err, codes.NotFound, "")
	}

	_, err = b.content.DeleteSource(tctx(t), &pipelinev1.DeleteSourceRequest{SourceId: srcID})
	requireCode(t, err, codes.NotFound, "")
	_, err = b.content.DeleteSource(tctx(t), &pipelinev1.DeleteSourceRequest{SourceId: uuid.NewString()})
	requireCode(t, err, codes.NotFound, "")
}

// --- 9. graceful shutdown

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *config.Config) { c.ShutdownTimeout = 20 * time.Second })

	resp := b.pendingJob(t, 1)
	jobID := resp.GetJob().GetJobId()
	ch := b.watch(t, jobID)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, nextJob(t, ch).GetStatus())

	// A REST watch too: it reaches the gRPC server through the in-process connection.
	httpResp := b.send(t, http.MethodGet, "/v1/jobs/"+jobID+":watch", "")
	defer httpResp.Body.Close()
	require.Equal(t, http.StatusOK, httpResp.StatusCode)
	lines := bufio.NewReader(httpResp.Body)
	first, err := lines.ReadBytes('\n')
	require.NoError(t, err)
	require.Contains(t, string(first), "JOB_STATUS_PENDING")
	restDone := make(chan []byte, 1)
	go func() {
		rest, _ := io.ReadAll(lines) // ends with EOF or a connection error; either is an end
		restDone <- rest
	}()

	start := time.Now()
	require.NoError(t, b.stop())
	require.Less(t, time.Since(start), 5*time.Second, "open watches end at once instead of holding shutdown to its deadline")

	end := next(t, ch)
	require.Error(t, end.err)
	require.False(t, errors.Is(end.err, io.EOF), "the watch was cut, not finished: %v", end.err)
	require.Contains(t, []codes.Code{codes.Unavailable, codes.Canceled}, status.Code(end.err), "%v", end.err)

	select {
	case rest := <-restDone:
		// The gateway reports the cut stream as a last {"error": status} line, if it can still write.
		if line := strings.TrimSpace(string(rest)); line != "" {
			var msg struct {
				Error *restError `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &msg), "rest of stream: %s", rest)
			require.NotNil(t, msg.Error, "rest of stream: %s", rest)
			require.Equal(t, int(codes.Unavailable), msg.Error.Code)
		}
	case <-time.After(waitTimeout):
		require.FailNow(t, "the REST watch did not end after shutdown")
	}

	// The server is gone: new calls fail rather than hang.
	_, err = b.jobs.GetJob(tctx(t), &pipelinev1.GetJobRequest{JobId: resp.GetJob().GetJobId()})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// --- readiness

// TestReadinessReportsEachDependency: with Redis unreachable the server stays alive (/healthz)
// but is not ready: /readyz names the failing dependency and the gRPC health service says
// NOT_SERVING.
func TestReadinessReportsEachDependency(t *testing.T) {
	t.Parallel()
	deadRedis := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = deadRedis.Close() })
	b := setupDeps(t, func(d *server.Deps) { d.Redis = deadRedis })

	code, r := b.readyz(t)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "not_ready", r.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "redis": "unavailable", "vector_store": "ok", "embedder": "ok"}, r.statuses())

	code, _ = b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, code, "liveness does not depend on Redis")

	b.requireServing(t, map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": notServing, "redis": notServing, "postgres": serving, "pipeline.v1.JobService": notServing,
		"pipeline.v1.SearchService": notServing,
	})
}

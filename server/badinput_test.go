package server_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

// rawCodec sends and receives messages as the bytes they are, so a test can send what the Go
// proto library refuses to marshal (invalid UTF-8 in a string field).
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

// field is one length-delimited protobuf field (strings and sub-messages alike).
func field(num protowire.Number, value []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, value)
}

// rowCounts are how many sources, documents and jobs the test's schema holds.
type rowCounts struct{ sources, documents, jobs int }

func (b *testBundle) counts(t *testing.T) rowCounts {
	t.Helper()
	var c rowCounts
	require.NoError(t, b.pool.QueryRow(tctx(t),
		`SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM documents), (SELECT count(*) FROM jobs)`,
	).Scan(&c.sources, &c.documents, &c.jobs))
	return c
}

// requireNothingStored checks that a refused call left no row behind.
func (b *testBundle) requireNothingStored(t *testing.T, before rowCounts) {
	t.Helper()
	require.Equal(t, before, b.counts(t), "a refused call must store nothing")
}

// invokeRaw calls a unary method with hand-built request bytes.
func (b *testBundle) invokeRaw(t *testing.T, method string, req []byte) error {
	t.Helper()
	var resp []byte
	return b.conn.Invoke(tctx(t), method, req, &resp, grpc.ForceCodecV2(rawCodec{}))
}

// TestBadInputGRPC sends malformed, oversized and hostile requests over the gRPC listener: each
// gets InvalidArgument naming what is wrong, and nothing is stored.
func TestBadInputGRPC(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.createSource(t)

	t.Run("invalid UTF-8 in IngestDocuments content", func(t *testing.T) {
		before := b.counts(t)
		doc := append(field(1, []byte("a.md")), field(4, []byte("bad \xff\xfe bytes"))...)
		req := append(field(1, []byte(src.GetSourceId())), field(2, doc)...)
		err := b.invokeRaw(t, pipelinev1.ContentService_IngestDocuments_FullMethodName, req)
		st := requireCode(t, err, codes.InvalidArgument, "")
		require.True(t, strings.HasPrefix(st.Message(), "request could not be decoded: "), st.Message())
		b.requireNothingStored(t, before)
	})
	t.Run("invalid UTF-8 in CreateSource name", func(t *testing.T) {
		before := b.counts(t)
		err := b.invokeRaw(t, pipelinev1.ContentService_CreateSource_FullMethodName, field(1, []byte("docs\xc3\x28")))
		st := requireCode(t, err, codes.InvalidArgument, "")
		require.Contains(t, st.Message(), "request could not be decoded")
		b.requireNothingStored(t, before)
	})
	t.Run("truncated message", func(t *testing.T) {
		before := b.counts(t)
		req := field(1, []byte("docs"))
		err := b.invokeRaw(t, pipelinev1.ContentService_CreateSource_FullMethodName, req[:len(req)-2])
		requireCode(t, err, codes.InvalidArgument, "")
		b.requireNothingStored(t, before)
	})
	t.Run("well-formed raw bytes still work", func(t *testing.T) {
		err := b.invokeRaw(t, pipelinev1.ContentService_CreateSource_FullMethodName, field(1, []byte("raw")))
		require.NoError(t, err)
	})
	t.Run("invalid UTF-8 on a stream", func(t *testing.T) {
		stream, err := b.conn.NewStream(tctx(t), &pipelinev1.WorkerService_ServiceDesc.Streams[0],
			pipelinev1.WorkerService_ReportProgress_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
		require.NoError(t, err)
		req := append(field(1, []byte("worker\xff")), field(2, []byte(uuid.NewString()))...)
		require.NoError(t, stream.SendMsg(req))
		require.NoError(t, stream.CloseSend())
		var resp []byte
		err = stream.RecvMsg(&resp)
		st := requireCode(t, err, codes.InvalidArgument, "")
		require.Contains(t, st.Message(), "request could not be decoded")
	})
	t.Run("oversized document", func(t *testing.T) {
		before := b.counts(t)
		docs := docInputs(1)
		docs[0].Content = strings.Repeat("a", 10<<20+1)
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docs})
		requireCode(t, err, codes.InvalidArgument, "documents[0].content")
		b.requireNothingStored(t, before)
	})
	t.Run("1001 documents", func(t *testing.T) {
		before := b.counts(t)
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docInputs(1001)})
		requireCode(t, err, codes.InvalidArgument, "documents")
		b.requireNothingStored(t, before)
	})
	t.Run("100 KB URL", func(t *testing.T) {
		before := b.counts(t)
		_, err := b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "https://example.com/" + strings.Repeat("a", 100<<10)})
		requireCode(t, err, codes.InvalidArgument, "url")
		b.requireNothingStored(t, before)
	})
	t.Run("NUL byte in content", func(t *testing.T) {
		before := b.counts(t)
		docs := docInputs(2)
		docs[1].Content = "before\x00after"
		_, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docs})
		requireCode(t, err, codes.InvalidArgument, "documents[1].content")
		b.requireNothingStored(t, before)
	})
	t.Run("path traversal in a uri is an opaque key", func(t *testing.T) {
		docs := docInputs(1)
		docs[0].Uri = "../../etc/passwd"
		resp, err := b.content.IngestDocuments(tctx(t), &pipelinev1.IngestDocumentsRequest{SourceId: src.GetSourceId(), Documents: docs})
		require.NoError(t, err)
		got, err := b.content.GetDocument(tctx(t), &pipelinev1.GetDocumentRequest{DocumentId: resp.GetDocuments()[0].GetDocumentId()})
		require.NoError(t, err)
		require.Equal(t, "../../etc/passwd", got.GetDocument().GetUri())
	})
	t.Run("unknown enum number", func(t *testing.T) {
		_, err := b.jobs.ListJobs(tctx(t), &pipelinev1.ListJobsRequest{Status: pipelinev1.JobStatus(77)})
		requireCode(t, err, codes.InvalidArgument, "status")
		_, err = b.content.CreateSource(tctx(t), &pipelinev1.CreateSourceRequest{Url: "https://example.com/", Crawler: pipelinev1.Crawler(77)})
		requireCode(t, err, codes.InvalidArgument, "crawler")
	})
	t.Run("page_token from another filter", func(t *testing.T) {
		b.createSource(t)
		page, err := b.content.ListSources(tctx(t), &pipelinev1.ListSourcesRequest{PageSize: 1})
		require.NoError(t, err)
		require.NotEmpty(t, page.GetNextPageToken())
		_, err = b.content.ListSources(tctx(t), &pipelinev1.ListSourcesRequest{
			PageSize: 1, PageToken: page.GetNextPageToken(), Status: pipelinev1.SourceStatus_SOURCE_STATUS_FAILED,
		})
		requireCode(t, err, codes.InvalidArgument, "page_token")
	})
}

// TestBadInputREST sends malformed JSON to the REST gateway: each gets 400 and nothing is stored.
func TestBadInputREST(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := b.createSource(t)
	docsPath := "/v1/sources/" + src.GetSourceId() + "/documents"

	garbage := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.UintN(256))
	}
	garbage[0] = 0xff // invalid UTF-8 whatever the rest holds

	for _, tc := range []struct {
		name, path, body string
	}{
		{"invalid UTF-8 in a string", "/v1/sources", "{\"name\": \"docs\xff\xfe\"}"},
		{"malformed JSON", "/v1/sources", `{"name": "docs"`},
		{"not JSON", "/v1/sources", `name=docs`},
		{"unknown field", "/v1/sources", `{"name": "docs", "owner": "me"}`},
		{"unknown enum string", "/v1/sources", `{"url": "https://example.com/", "crawler": "CRAWLER_NOPE"}`},
		{"unknown enum number", "/v1/sources", `{"url": "https://example.com/", "crawler": 77}`},
		{"wrong type: number for string", "/v1/sources", `{"name": 5}`},
		{"wrong type: object for string", "/v1/sources", `{"name": {"a": 1}}`},
		{"wrong type: string for list", docsPath, `{"documents": "all of them"}`},
		{"raw binary content", docsPath, `{"documents": [{"uri": "bin", "content": "` + string(garbage) + `"}]}`},
		{"NUL escaped in content", docsPath, `{"documents": [{"uri": "nul", "content": "a\u0000b"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.counts(t)
			code, body := b.do(t, http.MethodPost, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "body: %s", body)
			e := decodeError(t, body)
			require.Equal(t, int(codes.InvalidArgument), e.Code)
			require.NotEmpty(t, e.Message)
			b.requireNothingStored(t, before)
		})
	}

	t.Run("base64-looking garbage is just text", func(t *testing.T) {
		text := base64.StdEncoding.EncodeToString(garbage)
		code, body := b.do(t, http.MethodPost, docsPath, fmt.Sprintf(`{"documents": [{"uri": "b64", "content": %q}]}`, text))
		require.Equal(t, http.StatusOK, code, "body: %s", body)
		var resp pipelinev1.IngestDocumentsResponse
		decodeProto(t, body, &resp)
		got, err := b.content.GetDocument(tctx(t), &pipelinev1.GetDocumentRequest{DocumentId: resp.GetDocuments()[0].GetDocumentId()})
		require.NoError(t, err)
		require.Equal(t, text, got.GetDocument().GetContent())
	})
}

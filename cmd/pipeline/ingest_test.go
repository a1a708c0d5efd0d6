package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

const demoCorpus = "../../examples/demo-corpus"

// demoURIs are the uris ingest gives the demo corpus.
func demoURIs(t *testing.T) []string {
	t.Helper()
	files, err := walkCorpus(demoCorpus, maxFileBytes, func(format string, args ...any) {
		t.Errorf("demo corpus: "+format, args...)
	})
	require.NoError(t, err)
	uris := make([]string, len(files))
	for i, f := range files {
		uris[i] = f.URI
	}
	return uris
}

// sourcesNamedOnServer lists the server's sources with the name.
func (b *clientBundle) sourcesNamedOnServer(t *testing.T, name string) []*pipelinev1.Source {
	t.Helper()
	resp, err := b.content.ListSources(callCtx(t), &pipelinev1.ListSourcesRequest{PageSize: 1000})
	require.NoError(t, err)
	return sourcesNamed(resp.GetSources(), name)
}

// sourceJobs lists the source's jobs, newest first.
func (b *clientBundle) sourceJobs(t *testing.T, sourceID string) []*pipelinev1.Job {
	t.Helper()
	resp, err := b.jobs.ListJobs(callCtx(t), &pipelinev1.ListJobsRequest{SourceId: sourceID, PageSize: 1000})
	require.NoError(t, err)
	return resp.GetJobs()
}

func TestIngestCreatesSourceThenReusesIt(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	want := demoURIs(t)
	require.GreaterOrEqual(t, len(want), 12)

	res := b.runClient(t, ingestCmd(), demoCorpus, "--source", "handbook", "--wait=false")
	require.NoError(t, res.err, "stderr: %s", res.stderr)
	require.Empty(t, res.stderr, "the demo corpus has nothing to warn about")
	require.Contains(t, res.stdout, `created upload source "handbook"`)
	require.Contains(t, res.stdout, fmt.Sprintf("uploaded %d documents (%d new or changed)", len(want), len(want)))

	srcs := b.sourcesNamedOnServer(t, "handbook")
	require.Len(t, srcs, 1)
	src := srcs[0]
	require.Empty(t, src.GetUrl(), "an upload source")
	js := b.sourceJobs(t, src.GetSourceId())
	require.Len(t, js, 1)
	require.Equal(t, int64(len(want)), js[0].GetProcessing().GetDocumentCount())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, js[0].GetStatus())
	require.Contains(t, res.stdout, js[0].GetJobId())

	docs, err := b.content.ListDocuments(callCtx(t), &pipelinev1.ListDocumentsRequest{SourceId: src.GetSourceId(), PageSize: 1000})
	require.NoError(t, err)
	var got []string
	types := map[string]string{}
	for _, d := range docs.GetDocuments() {
		got = append(got, d.GetUri())
		types[d.GetUri()] = d.GetContentType()
	}
	require.ElementsMatch(t, want, got)
	require.Contains(t, got, "install/linux.md")
	require.Equal(t, "text/html", types["reference/cli.html"])
	require.Equal(t, "text/plain", types["glossary.txt"])
	require.Equal(t, "text/markdown", types["faq.md"])

	// The same directory again: the source is found by name and nothing changed.
	res = b.runClient(t, ingestCmd(), demoCorpus, "--source", "handbook", "--wait=false")
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, fmt.Sprintf(`using source "handbook" (%s)`, src.GetSourceId()))
	require.Contains(t, res.stdout, fmt.Sprintf("uploaded %d documents (0 new or changed)", len(want)))
	require.Len(t, b.sourcesNamedOnServer(t, "handbook"), 1, "no second source")
	require.Len(t, b.sourceJobs(t, src.GetSourceId()), 2)
}

func TestIngestPicksNewestOfSameName(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	var newest string
	for range 2 {
		resp, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: "twin"})
		require.NoError(t, err)
		newest = resp.GetSource().GetSourceId()
	}
	res := b.runClient(t, ingestCmd(), demoCorpus, "--source", "twin", "--wait=false")
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, fmt.Sprintf(`using source "twin" (%s), the newest of 2 sources`, newest))
	require.Len(t, b.sourceJobs(t, newest), 1)
}

func TestIngestJSONWithoutWaiting(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	res := b.runClient(t, ingestCmd(), demoCorpus, "--source", "json", "--wait=false", "--output", "json")
	require.NoError(t, res.err)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 1, "only the summary: %s", res.stdout)
	sum := decodeSummary(t, lines[0])
	require.True(t, sum.SourceCreated)
	require.False(t, sum.Waited)
	require.Equal(t, len(demoURIs(t)), sum.Documents)
	require.Equal(t, sum.Documents, sum.Changed)
	require.Equal(t, exitOK, sum.ExitCode)
	require.Len(t, sum.Jobs, 1)
	var job pipelinev1.Job
	require.NoError(t, protojson.Unmarshal(sum.Jobs[0], &job))
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, job.GetStatus())
	require.Contains(t, string(sum.Jobs[0]), `"job_id"`, "proto field names")
}

func decodeSummary(t *testing.T, line string) ingestSummary {
	t.Helper()
	var v struct {
		Summary *ingestSummary `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &v), "line: %s", line)
	require.NotNil(t, v.Summary, "not a summary: %s", line)
	return *v.Summary
}

// TestIngestWaitExitCodes drives the job that ingest watches through the server's job manager,
// as a worker would, and checks the watch output and the exit code for each way a job can end.
func TestIngestWaitExitCodes(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	for _, tc := range []struct {
		name   string
		drive  func(t *testing.T, id uuid.UUID, docs []uuid.UUID)
		code   int
		errMsg string
		status pipelinev1.JobStatus
	}{
		{
			name:   "all succeed",
			drive:  func(t *testing.T, id uuid.UUID, docs []uuid.UUID) { b.finishJob(t, id, docs, 0) },
			code:   exitOK,
			status: pipelinev1.JobStatus_JOB_STATUS_COMPLETED,
		},
		{
			name:   "some documents fail",
			drive:  func(t *testing.T, id uuid.UUID, docs []uuid.UUID) { b.finishJob(t, id, docs, 2) },
			code:   exitDocErrors,
			errMsg: "2 of",
			status: pipelinev1.JobStatus_JOB_STATUS_COMPLETED,
		},
		{
			name: "job fails",
			drive: func(t *testing.T, id uuid.UUID, _ []uuid.UUID) {
				_, err := b.deps.Jobs.Fail(callCtx(t), id, "embedder refused the key")
				require.NoError(t, err)
			},
			code:   exitJobsNotDone,
			errMsg: "FAILED: embedder refused the key",
			status: pipelinev1.JobStatus_JOB_STATUS_FAILED,
		},
		{
			name: "job cancelled",
			drive: func(t *testing.T, id uuid.UUID, _ []uuid.UUID) {
				_, err := b.deps.Jobs.Cancel(callCtx(t), id)
				require.NoError(t, err)
			},
			code:   exitJobsNotDone,
			errMsg: "CANCELLED",
			status: pipelinev1.JobStatus_JOB_STATUS_CANCELLED,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := newLineSink()
			done := make(chan error, 1)
			go func() {
				done <- b.execute(t, ingestCmd(), sink, sink, demoCorpus, "--source", tc.name, "--output", "json")
			}()

			// The first line is the watch's first snapshot: the job, still pending.
			var first pipelinev1.WatchJobResponse
			line := sink.next(t)
			require.NoError(t, protojson.Unmarshal([]byte(line), &first), "line: %s", line)
			require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, first.GetJob().GetStatus())
			id := uuid.MustParse(first.GetJob().GetJobId())
			job, err := b.deps.Jobs.Get(callCtx(t), id)
			require.NoError(t, err)
			tc.drive(t, id, job.DocumentIDs)

			var runErr error
			select {
			case runErr = <-done:
			case <-time.After(clientWait):
				require.FailNow(t, "ingest did not return after its job ended")
			}
			require.Equal(t, tc.code, exitCode(runErr), "err: %v", runErr)
			if tc.errMsg != "" {
				require.ErrorContains(t, runErr, tc.errMsg)
			}

			// Every line is JSON: watch events in version order, then the summary.
			lines := sink.rest()
			require.NotEmpty(t, lines)
			last := first.GetJob()
			for _, l := range lines[:len(lines)-1] {
				var ev pipelinev1.WatchJobResponse
				require.NoError(t, protojson.Unmarshal([]byte(l), &ev), "line: %s", l)
				require.Greater(t, ev.GetJob().GetVersion(), last.GetVersion())
				last = ev.GetJob()
			}
			require.Equal(t, tc.status, last.GetStatus())
			sum := decodeSummary(t, lines[len(lines)-1])
			require.Equal(t, tc.code, sum.ExitCode)
			require.True(t, sum.Waited)
			require.Len(t, sum.Jobs, 1)
		})
	}
}

// finishJob starts the job, records every document as succeeded except the first failed ones,
// and completes it.
func (b *clientBundle) finishJob(t *testing.T, id uuid.UUID, docs []uuid.UUID, failed int) {
	t.Helper()
	_, err := b.deps.Jobs.Start(callCtx(t), id)
	require.NoError(t, err)
	results := make([]jobs.DocumentResultUpdate, len(docs))
	for i, d := range docs {
		results[i] = jobs.DocumentResultUpdate{DocumentID: d, Status: jobs.DocSucceeded, ChunkCount: 2, Attempts: 1}
		if i < failed {
			results[i] = jobs.DocumentResultUpdate{DocumentID: d, Status: jobs.DocFailed, Attempts: 1,
				LastError: "unreadable", ErrorKind: jobs.KindPermanent}
		}
	}
	_, err = b.deps.Jobs.RecordResults(callCtx(t), jobs.RecordParams{JobID: id, Results: results})
	require.NoError(t, err)
	_, err = b.deps.Jobs.Complete(callCtx(t), id)
	require.NoError(t, err)
}

func TestIngestTextWaitPrintsLines(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	sink := newLineSink()
	done := make(chan error, 1)
	go func() { done <- b.execute(t, ingestCmd(), sink, sink, demoCorpus, "--source", "text") }()

	var id uuid.UUID
	for id == uuid.Nil {
		line := sink.next(t)
		if strings.HasPrefix(line, "job ") && strings.Contains(line, "PENDING") {
			id = uuid.MustParse(strings.Fields(line)[1])
		}
	}
	job, err := b.deps.Jobs.Get(callCtx(t), id)
	require.NoError(t, err)
	b.finishJob(t, id, job.DocumentIDs, 0)
	select {
	case err = <-done:
	case <-time.After(clientWait):
		require.FailNow(t, "ingest did not return")
	}
	require.NoError(t, err)
	out := strings.Join(sink.rest(), "\n")
	n := len(job.DocumentIDs)
	require.Contains(t, out, fmt.Sprintf("job %s COMPLETED: %d/%d processed, 0 errors, %d chunks", id, n, n, 2*n))
	require.Contains(t, out, fmt.Sprintf("done: %d/%d documents processed", n, n))
}

func TestIngestInterruptedWaitEnds(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	sink := newLineSink()
	ctx, interrupt := context.WithCancel(callCtx(t))
	done := make(chan error, 1)
	go func() { done <- b.executeCtx(ctx, ingestCmd(), sink, sink, demoCorpus, "--source", "interrupted") }()

	var id string
	for id == "" {
		if line := sink.next(t); strings.HasPrefix(line, "job ") {
			id = strings.Fields(line)[1]
		}
	}
	interrupt() // as Ctrl-C does through the root command's context
	var err error
	select {
	case err = <-done:
	case <-time.After(clientWait):
		require.FailNow(t, "ingest did not return when interrupted")
	}
	require.ErrorContains(t, err, "interrupted while waiting; these jobs go on on the server: "+id)
	require.Equal(t, exitInterrupted, exitCode(err))
}

func TestIngestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.pdf"), []byte("x"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{demoCorpus}, "--source: give the name"},
		{[]string{}, "accepts 1 arg"},
		{[]string{demoCorpus, "--bogus"}, "unknown flag"},
		{[]string{demoCorpus, "--source", "  "}, "--source"},
		{[]string{filepath.Join(dir, "missing"), "--source", "s"}, "no such file"},
		{[]string{filepath.Join(dir, "notes.pdf"), "--source", "s"}, "not a directory"},
		{[]string{dir, "--source", "s"}, "no .md"},
		{[]string{demoCorpus, "--source", "s", "--output", "xml"}, "--output"},
	} {
		cmd := ingestCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetArgs(append(tc.args, "--server", "127.0.0.1:1"))
		markUsageErrors(cmd)
		err := cmd.ExecuteContext(callCtx(t))
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
		require.Equal(t, exitUsage, exitCode(err), "%v", tc.args)
	}
}

func TestWalkCorpusFilters(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("a.md", "# A")
	write("b.MARKDOWN", "# B")
	write("c.txt", "plain")
	write("d.html", "<p>d</p>")
	write("e.htm", "<p>e</p>")
	write("sub/deeper/f.md", "# F")
	write("notes.pdf", "%PDF")
	write("noext", "x")
	write(".hidden.md", "# hidden")
	write(".git/HEAD.md", "# in a hidden dir")
	write("sub/.secret/g.md", "# hidden too")
	write("big.md", strings.Repeat("x", 101))
	write("exact.md", strings.Repeat("y", 100))
	write("latin1.txt", "caf\xe9")
	write("nul.txt", "a\x00b")
	require.NoError(t, os.WriteFile(filepath.Join(outside, "out.md"), []byte("# out"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(root, "a.md"), filepath.Join(root, "link-in.md")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "out.md"), filepath.Join(root, "link-out.md")))
	require.NoError(t, os.Symlink(filepath.Join(root, "gone.md"), filepath.Join(root, "broken.md")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "outdir")))

	var warnings []string
	files, err := walkCorpus(root, 100, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})
	require.NoError(t, err)
	got := map[string]string{}
	var order []string
	for _, f := range files {
		got[f.URI] = f.ContentType
		order = append(order, f.URI)
	}
	require.Equal(t, map[string]string{
		"a.md":            "text/markdown",
		"b.MARKDOWN":      "text/markdown",
		"c.txt":           "text/plain",
		"d.html":          "text/html",
		"e.htm":           "text/html",
		"exact.md":        "text/markdown",
		"link-in.md":      "text/markdown",
		"sub/deeper/f.md": "text/markdown",
	}, got)
	require.True(t, slices.IsSorted(order), "lexical order: %v", order)
	for _, f := range files {
		if f.URI == "link-in.md" {
			require.Equal(t, "# A", f.Content, "a link inside the directory is read")
		}
	}

	require.Len(t, warnings, 5, "%q", warnings)
	all := strings.Join(warnings, "\n")
	require.Contains(t, all, "big.md: 101 B, over the limit of 100 B")
	require.Contains(t, all, "latin1.txt: not UTF-8 text")
	require.Contains(t, all, "nul.txt: not UTF-8 text")
	require.Contains(t, all, "link-out.md: a link to")
	require.Contains(t, all, "broken.md")
	require.NotContains(t, all, "hidden")
	require.NotContains(t, all, "notes.pdf")
}

func TestWalkCorpusFromALinkedRoot(t *testing.T) {
	t.Parallel()
	real := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(real, "a.md"), []byte("# A"), 0o644))
	link := filepath.Join(t.TempDir(), "corpus")
	require.NoError(t, os.Symlink(real, link))
	files, err := walkCorpus(link, maxFileBytes, func(f string, a ...any) { t.Errorf(f, a...) })
	require.NoError(t, err)
	require.Len(t, files, 1)
	require.Equal(t, "a.md", files[0].URI)
}

func TestBatchesRespectCountAndSize(t *testing.T) {
	t.Parallel()
	file := func(n int) corpusFile {
		return corpusFile{URI: "f", ContentType: "text/plain", Content: strings.Repeat("x", n)}
	}
	sizes := func(bs [][]corpusFile) []int {
		var out []int
		for _, b := range bs {
			out = append(out, len(b))
		}
		return out
	}
	var seven []corpusFile
	for range 7 {
		seven = append(seven, file(10))
	}
	require.Equal(t, []int{3, 3, 1}, sizes(batches(seven, 3, 1<<20)), "count cap")

	per := requestSize(file(100))
	mixed := []corpusFile{file(100), file(100), file(100), file(1000), file(100)}
	require.Equal(t, []int{2, 1, 1, 1}, sizes(batches(mixed, 500, 2*per)), "size cap; a file over the cap goes alone")
	require.Empty(t, batches(nil, 500, 1<<20))
}

// refusingContent answers IngestDocuments with ResourceExhausted for requests of more than max
// documents, as a server does for a message over its size limit.
type refusingContent struct {
	pipelinev1.ContentServiceClient
	max int

	mu    sync.Mutex
	sizes []int
}

func (c *refusingContent) IngestDocuments(_ context.Context, req *pipelinev1.IngestDocumentsRequest, _ ...grpc.CallOption) (*pipelinev1.IngestDocumentsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(req.GetDocuments())
	c.sizes = append(c.sizes, n)
	if n > c.max {
		return nil, status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
	}
	resp := &pipelinev1.IngestDocumentsResponse{Job: &pipelinev1.Job{JobId: uuid.NewString()}, ChangedCount: int32(n)}
	for _, d := range req.GetDocuments() {
		resp.Documents = append(resp.Documents, &pipelinev1.Document{Uri: d.GetUri()})
	}
	return resp, nil
}

func TestIngestBatchSplitsWhatTheServerRefuses(t *testing.T) {
	t.Parallel()
	fake := &refusingContent{max: 2}
	c := &client{settings: &clientSettings{Server: "fake", Timeout: time.Second}, content: fake}
	files := make([]corpusFile, 5)
	for i := range files {
		files[i] = corpusFile{URI: fmt.Sprintf("%d.md", i), Content: "x"}
	}
	resps, err := c.ingestBatch(t.Context(), uuid.NewString(), files)
	require.NoError(t, err)
	var uris []string
	for _, r := range resps {
		for _, d := range r.GetDocuments() {
			uris = append(uris, d.GetUri())
		}
	}
	require.Equal(t, []string{"0.md", "1.md", "2.md", "3.md", "4.md"}, uris, "every document once, in order")
	require.Equal(t, []int{5, 2, 3, 1, 2}, fake.sizes)
	require.Len(t, resps, 3)

	// One document the server refuses cannot be split: the error says which.
	fake = &refusingContent{max: 0}
	c.content = fake
	_, err = c.ingestBatch(t.Context(), uuid.NewString(), files[:1])
	require.ErrorContains(t, err, "upload 0.md: the server answered RESOURCE_EXHAUSTED")
}

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// uploadJob makes (or reuses) an upload source named source with n new documents and returns
// the PENDING processing job and its document ids.
func (b *clientBundle) uploadJob(t *testing.T, source string, n int) (uuid.UUID, []uuid.UUID) {
	t.Helper()
	var srcID string
	if named := b.sourcesNamedOnServer(t, source); len(named) > 0 {
		srcID = named[0].GetSourceId()
	} else {
		resp, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: source})
		require.NoError(t, err)
		srcID = resp.GetSource().GetSourceId()
	}
	req := &pipelinev1.IngestDocumentsRequest{SourceId: srcID}
	for range n {
		req.Documents = append(req.Documents, &pipelinev1.DocumentInput{
			Uri: uuid.NewString() + ".md", ContentType: "text/markdown", Content: "# A page\n\nwith text " + uuid.NewString(),
		})
	}
	resp, err := b.content.IngestDocuments(callCtx(t), req)
	require.NoError(t, err)
	var docs []uuid.UUID
	for _, d := range resp.GetDocuments() {
		docs = append(docs, uuid.MustParse(d.GetDocumentId()))
	}
	return uuid.MustParse(resp.GetJob().GetJobId()), docs
}

// runJobs runs `jobs ARGS` against b.
func (b *clientBundle) runJobs(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return b.runClient(t, jobsCmd(), args...)
}

// tableIDs returns the first column of a table's rows, without the header.
func tableIDs(out string) []string {
	var ids []string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	return ids
}

func TestJobsListFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	a1, docs := b.uploadJob(t, "alpha", 2)
	a2, _ := b.uploadJob(t, "alpha", 1)
	a3, _ := b.uploadJob(t, "alpha", 1)
	b1, _ := b.uploadJob(t, "beta", 1)
	b.finishJob(t, a1, docs, 0)
	_, err := b.deps.Jobs.Fail(callCtx(t), a2, "embedder refused the key")
	require.NoError(t, err)
	all := []string{b1.String(), a3.String(), a2.String(), a1.String()} // newest first

	res := b.runJobs(t, "list")
	require.NoError(t, res.err)
	require.True(t, strings.HasPrefix(res.stdout, "ID "), res.stdout)
	require.Equal(t, all, tableIDs(res.stdout))
	require.Contains(t, res.stdout, a1.String()+"  process  COMPLETED")
	require.Contains(t, res.stdout, "2/2 docs, 0 errors")
	require.Empty(t, res.stderr, "one page holds them all")

	res = b.runJobs(t, "list", "--status", "FAILED")
	require.NoError(t, res.err)
	require.Equal(t, []string{a2.String()}, tableIDs(res.stdout))

	res = b.runJobs(t, "list", "--source", "alpha", "--status", "pending", "-o", "json")
	require.NoError(t, res.err)
	var list pipelinev1.ListJobsResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &list))
	require.Len(t, list.GetJobs(), 1)
	require.Equal(t, a3.String(), list.GetJobs()[0].GetJobId())
	require.Equal(t, 1, strings.Count(res.stdout, "\n"), "one JSON object on one line")

	res = b.runJobs(t, "list", "--type", "crawl")
	require.NoError(t, res.err)
	require.Equal(t, "no jobs\n", res.stdout)

	// Paging: the next page's command is on stderr; the pages add up to every job, once.
	res = b.runJobs(t, "list", "--limit", "3")
	require.NoError(t, res.err)
	first := tableIDs(res.stdout)
	require.Equal(t, all[:3], first)
	require.Contains(t, res.stderr, "more jobs: add --page-token ")
	token := strings.Fields(strings.TrimPrefix(res.stderr, "more jobs: add --page-token "))[0]
	res = b.runJobs(t, "list", "--limit", "3", "--page-token", token)
	require.NoError(t, res.err)
	require.Equal(t, all[3:], tableIDs(res.stdout))
	require.Empty(t, res.stderr)

	res = b.runJobs(t, "list", "--all", "--limit", "1", "-o", "json")
	require.NoError(t, res.err)
	list.Reset()
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &list))
	var ids []string
	for _, j := range list.GetJobs() {
		ids = append(ids, j.GetJobId())
	}
	require.Equal(t, all, ids)
	require.Empty(t, list.GetNextPageToken())

	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"list", "--status", "done"}, "--status", exitUsage},
		{[]string{"list", "--type", "index"}, "--type", exitUsage},
		{[]string{"list", "--limit", "0"}, "--limit", exitUsage},
		{[]string{"list", "--all", "--page-token", "x"}, "--all and --page-token", exitUsage},
		{[]string{"list", "extra"}, "unknown command", exitUsage},
		{[]string{"list", "--source", "gamma"}, `no source has the id or name "gamma"`, exitNotFound},
		{[]string{"list", "--page-token", "garbage"}, "page_token", exitUsage},
	} {
		res := b.runJobs(t, tc.args...)
		require.ErrorContains(t, res.err, tc.want, "%v", tc.args)
		require.Equal(t, tc.code, exitCode(res.err), "%v: %v", tc.args, res.err)
	}
}

func TestJobsGetAndDocuments(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	id, docs := b.uploadJob(t, "alpha", 3)
	b.finishJob(t, id, docs, 1)

	res := b.runJobs(t, "get", id.String())
	require.NoError(t, res.err)
	for _, want := range []string{"id:", id.String(), "type:", "process", "status:", "COMPLETED", "documents:",
		"2 processed of 3, 1 failed, 4 chunks", "started:", "finished:", "took"} {
		require.Contains(t, res.stdout, want)
	}

	res = b.runJobs(t, "get", id.String(), "--output", "json")
	require.NoError(t, res.err)
	var got pipelinev1.GetJobResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &got))
	require.Equal(t, id.String(), got.GetJob().GetJobId())
	require.Equal(t, int64(1), got.GetJob().GetProcessing().GetErrorCount())

	res = b.runJobs(t, "documents", id.String())
	require.NoError(t, res.err)
	require.Len(t, tableIDs(res.stdout), 3)
	require.Contains(t, res.stdout, "SUCCEEDED")

	res = b.runJobs(t, "documents", id.String(), "--failed")
	require.NoError(t, res.err)
	require.Equal(t, []string{docs[0].String()}, tableIDs(res.stdout))
	require.Contains(t, res.stdout, "FAILED")
	require.Contains(t, res.stdout, "permanent: unreadable")

	res = b.runJobs(t, "documents", id.String(), "--failed", "-o", "json")
	require.NoError(t, res.err)
	var results pipelinev1.ListJobDocumentsResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &results))
	require.Len(t, results.GetResults(), 1)
	require.Equal(t, "unreadable", results.GetResults()[0].GetLastError())

	unknown := uuid.NewString()
	for _, args := range [][]string{{"get", unknown}, {"documents", unknown}, {"watch", unknown}, {"cancel", unknown}, {"retry", unknown}} {
		res = b.runJobs(t, args...)
		require.Error(t, res.err, "%v", args)
		require.Equal(t, exitNotFound, exitCode(res.err), "%v: %v", args, res.err)
		require.Empty(t, res.stdout)

		res = b.runJobs(t, args[0], "not-a-job")
		require.ErrorContains(t, res.err, `JOB_ID: want a job id (a UUID), got "not-a-job"`)
		require.Equal(t, exitUsage, exitCode(res.err))
	}
}

func TestJobsWatchExitsWithTheOutcome(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	for _, tc := range []struct {
		name   string
		output string
		finish func(t *testing.T, id uuid.UUID, docs []uuid.UUID)
		status pipelinev1.JobStatus
		code   int
	}{
		{"completed", "text", func(t *testing.T, id uuid.UUID, docs []uuid.UUID) { b.finishJob(t, id, docs, 0) },
			pipelinev1.JobStatus_JOB_STATUS_COMPLETED, exitOK},
		{"completed with failed documents", "json", func(t *testing.T, id uuid.UUID, docs []uuid.UUID) { b.finishJob(t, id, docs, 1) },
			pipelinev1.JobStatus_JOB_STATUS_COMPLETED, exitDocErrors},
		{"failed", "text", func(t *testing.T, id uuid.UUID, _ []uuid.UUID) {
			_, err := b.deps.Jobs.Fail(callCtx(t), id, "embedder refused the key")
			require.NoError(t, err)
		}, pipelinev1.JobStatus_JOB_STATUS_FAILED, exitJobsNotDone},
		{"cancelled", "json", func(t *testing.T, id uuid.UUID, _ []uuid.UUID) {
			_, err := b.deps.Jobs.Cancel(callCtx(t), id)
			require.NoError(t, err)
		}, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, exitJobsNotDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, docs := b.uploadJob(t, "watched-"+tc.name, 3)
			sink := newLineSink()
			done := make(chan error, 1)
			go func() { done <- b.execute(t, jobsCmd(), sink, sink, "watch", id.String(), "--output", tc.output) }()

			first := sink.next(t) // the PENDING state, before anything changes
			tc.finish(t, id, docs)
			err := waitDone(t, done)
			lines := append([]string{first}, sink.rest()...)
			require.Equal(t, tc.code, exitCode(err), "err: %v\n%s", err, strings.Join(lines, "\n"))

			if tc.output == "json" {
				var last *pipelinev1.Job
				for _, l := range lines {
					var ev pipelinev1.WatchJobResponse
					require.NoError(t, protojson.Unmarshal([]byte(l), &ev), "every line is one WatchJobResponse: %s", l)
					if last != nil {
						require.Greater(t, ev.GetJob().GetVersion(), last.GetVersion())
					}
					last = ev.GetJob()
				}
				require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, mustJob(t, lines[0]).GetStatus())
				require.Equal(t, tc.status, last.GetStatus())
				return
			}
			// Not a terminal: plain lines, no cursor movement, the first and the final state.
			out := strings.Join(lines, "\n")
			require.NotContains(t, out, "\x1b[")
			require.Equal(t, fmt.Sprintf("job %s PENDING: 0/3 processed, 0 errors", id), first)
			require.Contains(t, lines[len(lines)-1], fmt.Sprintf("job %s %s: ", id, statusName(tc.status)))
			if tc.code != exitOK {
				require.ErrorContains(t, err, "embedder refused the key")
			}
		})
	}
}

// waitDone waits for a command run in the background to return.
func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(clientWait):
		require.FailNow(t, "the command did not return")
		return nil
	}
}

func mustJob(t *testing.T, line string) *pipelinev1.Job {
	t.Helper()
	var ev pipelinev1.WatchJobResponse
	require.NoError(t, protojson.Unmarshal([]byte(line), &ev))
	return ev.GetJob()
}

func TestJobsWatchAFinishedJobEndsAtOnce(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	id, docs := b.uploadJob(t, "done", 2)
	b.finishJob(t, id, docs, 2)
	res := b.runJobs(t, "watch", id.String())
	require.Equal(t, exitDocErrors, exitCode(res.err), "%v", res.err)
	require.ErrorContains(t, res.err, "2 of 2 documents failed; pipeline jobs documents "+id.String()+" --failed shows which")
	require.Equal(t, 1, strings.Count(res.stdout, "\n"), res.stdout)
	require.Contains(t, res.stdout, fmt.Sprintf("job %s COMPLETED: 0/2 processed, 2 errors", id))
}

func TestJobsCancelAndRetry(t *testing.T) {
	t.Parallel()
	b := setupServer(t)
	id, docs := b.uploadJob(t, "steered", 2)

	res := b.runJobs(t, "cancel", id.String())
	require.NoError(t, res.err)
	require.Equal(t, fmt.Sprintf("job %s CANCELLED: 0/2 docs, 0 errors\n", id), res.stdout)
	res = b.runJobs(t, "cancel", id.String(), "-o", "json")
	require.NoError(t, res.err, "cancelling a cancelled job changes nothing")
	var cancelled pipelinev1.CancelJobResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &cancelled))
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, cancelled.GetJob().GetStatus())

	// The retry redoes both documents; --watch follows it to its end.
	sink := newLineSink()
	done := make(chan error, 1)
	go func() { done <- b.execute(t, jobsCmd(), sink, sink, "retry", id.String(), "--watch", "-o", "json") }()
	var retried pipelinev1.RetryJobResponse
	require.NoError(t, protojson.Unmarshal([]byte(sink.next(t)), &retried))
	newID := uuid.MustParse(retried.GetJob().GetJobId())
	require.Equal(t, id.String(), retried.GetJob().GetRetryOfJobId())
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_PENDING, mustJob(t, sink.next(t)).GetStatus())
	b.finishJob(t, newID, docs, 0)
	require.NoError(t, waitDone(t, done))
	rest := sink.rest()
	require.NotEmpty(t, rest)
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, mustJob(t, rest[len(rest)-1]).GetStatus())

	// A completed job without errors can be neither cancelled nor retried.
	for _, verb := range []string{"cancel", "retry"} {
		res = b.runJobs(t, verb, newID.String())
		require.ErrorContains(t, res.err, "FAILED_PRECONDITION", verb)
		require.Equal(t, exitError, exitCode(res.err), verb)
	}

	res = b.runJobs(t, "retry", id.String())
	if res.err == nil { // a second retry of the same job is allowed: it redoes what is left
		require.Contains(t, res.stdout, "retries job "+id.String())
	}
}

func TestJobsExitCodesOfCallFailures(t *testing.T) {
	t.Parallel()
	const key = "jobs-test-key-0123456789"
	b := setupServer(t, func(c *config.Config) { c.APIKeys = []string{key + ":read"} })
	id := uuid.NewString()

	res := b.runJobs(t, "list")
	require.Equal(t, exitAuth, exitCode(res.err), "%v", res.err)
	require.ErrorContains(t, res.err, "set --api-key or PIPELINE_API_KEY")
	res = b.runJobs(t, "list", "--api-key", key)
	require.NoError(t, res.err)
	res = b.runJobs(t, "cancel", id, "--api-key", key)
	require.Equal(t, exitAuth, exitCode(res.err), "a read key cannot cancel: %v", res.err)
	require.ErrorContains(t, res.err, "PERMISSION_DENIED")

	// A key never goes over plaintext to another machine unless allowed; nothing is sent.
	cmd := jobsCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs([]string{"list", "--server", "192.0.2.1:9090", "--api-key", key})
	cmd.SetOut(&bytes.Buffer{})
	err := cmd.ExecuteContext(callCtx(t))
	require.ErrorContains(t, err, "refusing to send it over plaintext to 192.0.2.1:9090")
	require.ErrorContains(t, err, "--allow-plaintext-key")
	require.Equal(t, exitUsage, exitCode(err))

	// Nobody listens: retried, then exit 7.
	cmd = jobsCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs([]string{"get", id, "--server", "127.0.0.1:1"})
	cmd.SetOut(&bytes.Buffer{})
	err = cmd.ExecuteContext(callCtx(t))
	require.ErrorContains(t, err, "cannot reach the server at 127.0.0.1:1")
	require.Equal(t, exitUnavailable, exitCode(err))
}

func TestRootUsageErrorsAndExitCodesHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bogus"}, {"jobs", "bogus"}, {"sources", "bogus"}, {"jobs", "get"}, {"jobs", "list", "--bogus"}, {"version", "x"},
		{"workers", "extra"}, {"stats", "--window", "2h", "--server", "127.0.0.1:1"}, {"search", "--server", "127.0.0.1:1", " "},
	} {
		_, err := run(t, args...)
		require.Error(t, err, "%v", args)
		require.Equal(t, exitUsage, exitCode(err), "%v: %v", args, err)
	}
	out, err := run(t, "help", "exit-codes")
	require.NoError(t, err)
	require.Contains(t, out, "130  interrupted")
	out, err = run(t, "jobs")
	require.NoError(t, err)
	require.Contains(t, out, "watch")
}

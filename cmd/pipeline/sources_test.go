package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/servertest"
)

const sampleSite = "../../examples/sample-site"

// crawlWait bounds a command that watches a crawl and its processing to the end.
const crawlWait = 30 * time.Second

// sampleSitePages are the paths of the sample site a full crawl saves: every page but the one
// under /members/, which robots.txt disallows.
var sampleSitePages = []string{
	"/", "/plots.html", "/calendar.html", "/watering.html", "/compost.html", "/volunteers.html",
	"/faq.html", "/tools/", "/tools/sensor.html", "/tools/calibration.html",
}

// setupCrawlServer is setupServer with everything that makes a web source READY: the crawl
// runner, the reconciler and an in-process worker pool.
func setupCrawlServer(t *testing.T) *clientBundle {
	t.Helper()
	return startBundle(t, servertest.Options{Background: true, Workers: true})
}

// serveSampleSite serves examples/sample-site with the static command's handler.
func serveSampleSite(t *testing.T) string {
	t.Helper()
	root, err := os.OpenRoot(sampleSite)
	require.NoError(t, err)
	t.Cleanup(func() { _ = root.Close() })
	srv := httptest.NewServer(newStaticHandler(root.FS()))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runSources runs `sources ARGS` against b, with the server flag after the subcommand.
func (b *clientBundle) runSources(t *testing.T, args ...string) cmdResult {
	t.Helper()
	cmd := sourcesCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(&bytes.Buffer{}) // not a terminal
	cmd.SetArgs(append(args, "--server", b.addr))
	markUsageErrors(cmd)
	ctx, cancel := context.WithTimeout(t.Context(), crawlWait)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return cmdResult{stdout: out.String(), stderr: errOut.String(), err: err}
}

func (b *clientBundle) documentURIs(t *testing.T, sourceID string) []string {
	t.Helper()
	resp, err := b.content.ListDocuments(callCtx(t), &pipelinev1.ListDocumentsRequest{SourceId: sourceID, PageSize: 1000})
	require.NoError(t, err)
	var uris []string
	for _, d := range resp.GetDocuments() {
		uris = append(uris, d.GetUri())
	}
	return uris
}

func withBase(base string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = base + p
	}
	return out
}

func TestSourcesAddListGetRefreshDelete(t *testing.T) {
	t.Parallel()
	b := setupCrawlServer(t)
	site := serveSampleSite(t)

	res := b.runSources(t, "add", site+"/", "--name", "garden")
	require.NoError(t, res.err, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	require.Equal(t, exitOK, exitCode(res.err))
	srcs := b.sourcesNamedOnServer(t, "garden")
	require.Len(t, srcs, 1)
	src := srcs[0]
	id := src.GetSourceId()
	n := len(sampleSitePages)
	require.Equal(t, pipelinev1.SourceStatus_SOURCE_STATUS_READY, src.GetStatus())
	require.EqualValues(t, n, src.GetDocumentCount())
	require.ElementsMatch(t, withBase(site, sampleSitePages), b.documentURIs(t, id), "the robots-disallowed page is absent")

	out := res.stdout
	require.Contains(t, out, fmt.Sprintf(`created source "garden" (%s) for %s/: crawl job`, id, site))
	require.Regexp(t, fmt.Sprintf(`crawl job \S+ COMPLETED: %d pages fetched of \d+ discovered, 0 failed`, n), out)
	require.Contains(t, out, fmt.Sprintf("processing %d new or changed pages: job", n))
	require.Regexp(t, fmt.Sprintf(`job \S+ COMPLETED: %d/%d processed, 0 errors`, n, n), out)
	require.Contains(t, out, fmt.Sprintf(`source "garden" (%s) READY: %d documents`, id, n))

	// list: a table with the source.
	res = b.runSources(t, "list")
	require.NoError(t, res.err)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 2, res.stdout)
	require.Equal(t, []string{"ID", "NAME", "STATUS", "DOCUMENTS", "CHUNKS", "LAST", "CRAWL", "URL"}, strings.Fields(lines[0]))
	row := strings.Fields(lines[1])
	require.Len(t, row, 8, lines[1])
	require.Equal(t, []string{id, "garden", "READY", fmt.Sprint(n), fmt.Sprint(src.GetChunkCount())}, row[:5])
	require.Positive(t, src.GetChunkCount())
	require.Regexp(t, `^\S+$`, row[5], "how long ago the crawl finished")
	require.Equal(t, []string{"ago", site + "/"}, row[6:])

	res = b.runSources(t, "list", "-o", "json")
	require.NoError(t, res.err)
	var list pipelinev1.ListSourcesResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &list))
	require.Len(t, list.GetSources(), 1)
	require.Contains(t, res.stdout, `"source_id"`, "proto field names")

	// get, by name and by id.
	res = b.runSources(t, "get", "garden")
	require.NoError(t, res.err)
	require.Regexp(t, `status:\s+READY`, res.stdout)
	require.Regexp(t, fmt.Sprintf(`documents:\s+%d`, n), res.stdout)
	require.Regexp(t, fmt.Sprintf(`chunks:\s+%d`, src.GetChunkCount()), res.stdout)
	require.Regexp(t, `last crawl:\s+\S+ \S+ \(job \S+\)`, res.stdout)
	require.Regexp(t, `latest job:\s+PROCESS \S+ COMPLETED`, res.stdout)
	res = b.runSources(t, "get", id, "--output", "json")
	require.NoError(t, res.err)
	var got pipelinev1.GetSourceResponse
	require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &got))
	require.Equal(t, "garden", got.GetSource().GetName())

	// refresh: nothing changed, so nothing is processed.
	res = b.runSources(t, "refresh", "garden")
	require.NoError(t, res.err, "stdout: %s", res.stdout)
	require.Contains(t, res.stdout, fmt.Sprintf(`refreshing source "garden" (%s): crawl job`, id))
	require.Contains(t, res.stdout, "no new or changed pages, so there is nothing to process")
	require.Contains(t, res.stdout, fmt.Sprintf(`source "garden" (%s) READY: %d documents`, id, n))

	// delete: refused without --yes and a terminal, then done with --yes.
	res = b.runSources(t, "delete", "garden")
	require.ErrorContains(t, res.err, "refusing to delete without --yes")
	require.Equal(t, exitUsage, exitCode(res.err))
	require.Len(t, b.sourcesNamedOnServer(t, "garden"), 1, "still there")

	res = b.runSources(t, "delete", "garden", "--yes")
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, fmt.Sprintf(`deleted source "garden" (%s)`, id))
	require.Empty(t, b.sourcesNamedOnServer(t, "garden"))

	res = b.runSources(t, "get", "garden")
	require.ErrorContains(t, res.err, `no source has the id or name "garden"`)
	require.Equal(t, exitNotFound, exitCode(res.err))
}

func TestSourcesAddJSONLinesParse(t *testing.T) {
	t.Parallel()
	b := setupCrawlServer(t)
	site := serveSampleSite(t)

	// Depth 2 leaves out the calibration page, linked only from a page two links deep;
	// --exclude leaves out the FAQ.
	res := b.runSources(t, "add", site+"/", "--name", "shallow", "--max-depth", "2", "--exclude", "^/faq", "-o", "json")
	require.NoError(t, res.err, "stdout: %s", res.stdout)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.GreaterOrEqual(t, len(lines), 3, res.stdout)

	var crawlEvents, processEvents, sourceEvents int
	for _, l := range lines[:len(lines)-1] {
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(l), &obj), "line: %s", l)
		switch {
		case obj["job"] != nil:
			var ev pipelinev1.WatchJobResponse
			require.NoError(t, protojson.Unmarshal([]byte(l), &ev), "line: %s", l)
			if ev.GetJob().GetType() == pipelinev1.JobType_JOB_TYPE_CRAWL {
				require.Zero(t, processEvents, "the crawl comes first")
				crawlEvents++
			} else {
				processEvents++
			}
		case obj["source"] != nil:
			var ev pipelinev1.GetSourceResponse
			require.NoError(t, protojson.Unmarshal([]byte(l), &ev), "line: %s", l)
			sourceEvents++
		default:
			require.Failf(t, "unexpected line", "%s", l)
		}
	}
	require.Positive(t, crawlEvents)
	require.Positive(t, processEvents)

	var sum struct {
		Summary struct {
			Source     json.RawMessage `json:"source"`
			CrawlJob   json.RawMessage `json:"crawl_job"`
			ProcessJob json.RawMessage `json:"process_job"`
			Waited     bool            `json:"waited"`
			ExitCode   int             `json:"exit_code"`
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum))
	s := sum.Summary
	require.True(t, s.Waited)
	require.Equal(t, exitOK, s.ExitCode)
	var process pipelinev1.Job
	require.NoError(t, protojson.Unmarshal(s.ProcessJob, &process))
	require.Equal(t, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, process.GetStatus())
	var src pipelinev1.Source
	require.NoError(t, protojson.Unmarshal(s.Source, &src))
	require.Equal(t, pipelinev1.SourceStatus_SOURCE_STATUS_READY, src.GetStatus())
	require.EqualValues(t, 2, src.GetCrawlOptions().GetMaxDepth())

	want := withBase(site, []string{"/", "/plots.html", "/calendar.html", "/watering.html", "/compost.html",
		"/volunteers.html", "/tools/", "/tools/sensor.html"})
	require.EqualValues(t, len(want), src.GetDocumentCount())
	require.ElementsMatch(t, want, b.documentURIs(t, src.GetSourceId()))

	// Refresh without waiting: only the summary, with the crawl job.
	res = b.runSources(t, "refresh", "shallow", "--wait=false", "-o", "json")
	require.NoError(t, res.err)
	lines = strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 1, res.stdout)
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &sum))
	require.False(t, sum.Summary.Waited)
	var crawl pipelinev1.Job
	require.NoError(t, protojson.Unmarshal(sum.Summary.CrawlJob, &crawl))
	require.Equal(t, pipelinev1.JobType_JOB_TYPE_CRAWL, crawl.GetType())
	b.watchToEnd(t, crawl.GetJobId()) // let it end before the server stops
}

// watchToEnd waits until a job is terminal.
func (b *clientBundle) watchToEnd(t *testing.T, jobID string) {
	t.Helper()
	require.Eventually(t, func() bool {
		j, err := b.jobs.GetJob(callCtx(t), &pipelinev1.GetJobRequest{JobId: jobID})
		require.NoError(t, err)
		return jobTerminal(j.GetJob())
	}, crawlWait, 50*time.Millisecond)
}

func TestSourcesAddFailedCrawlExits4(t *testing.T) {
	t.Parallel()
	b := setupCrawlServer(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(gone.Close)

	res := b.runSources(t, "add", gone.URL+"/", "--name", "gone")
	require.Error(t, res.err)
	require.Equal(t, exitJobsNotDone, exitCode(res.err), "err: %v", res.err)
	require.ErrorContains(t, res.err, "FAILED")
	require.Regexp(t, `crawl job \S+ FAILED`, res.stdout)
	srcs := b.sourcesNamedOnServer(t, "gone")
	require.Len(t, srcs, 1)
	require.Equal(t, pipelinev1.SourceStatus_SOURCE_STATUS_FAILED, srcs[0].GetStatus())
	require.Contains(t, res.stdout, fmt.Sprintf(`source "gone" (%s) FAILED: %s`, srcs[0].GetSourceId(), srcs[0].GetError()))
}

func TestSourcesNameResolution(t *testing.T) {
	t.Parallel()
	b := setupServer(t) // upload sources only: nothing crawls
	create := func(name string) string {
		resp, err := b.content.CreateSource(callCtx(t), &pipelinev1.CreateSourceRequest{Name: name})
		require.NoError(t, err)
		return resp.GetSource().GetSourceId()
	}
	older := create("twin")
	newer := create("twin")
	// A name that looks like an id, but of no source: found by name.
	idLike := uuid.NewString()
	byName := create(idLike)
	// A source named with another source's id: the id wins.
	create(older)

	get := func(arg string) (string, cmdResult) {
		t.Helper()
		res := b.runSources(t, "get", arg, "-o", "json")
		if res.err != nil {
			return "", res
		}
		var got pipelinev1.GetSourceResponse
		require.NoError(t, protojson.Unmarshal([]byte(res.stdout), &got))
		return got.GetSource().GetSourceId(), res
	}
	id, _ := get("twin")
	require.Equal(t, newer, id, "the newest of a name")
	id, _ = get(older)
	require.Equal(t, older, id, "an exact id")
	id, _ = get(idLike)
	require.Equal(t, byName, id, "a name that parses as an id")

	res := b.runSources(t, "get", "twin")
	require.NoError(t, res.err)
	require.Contains(t, res.stdout, fmt.Sprintf(`2 sources are named "twin"; using the newest, %s`, newer))
	require.Contains(t, res.stdout, "(none: an upload source)")

	_, res = get("nobody")
	require.ErrorContains(t, res.err, `no source has the id or name "nobody"`)
	require.Equal(t, exitNotFound, exitCode(res.err))

	// Refreshing an upload source is refused by the server, with its reason.
	res = b.runSources(t, "refresh", "twin")
	require.ErrorContains(t, res.err, "upload source")
	require.Equal(t, exitError, exitCode(res.err))

	// Delete resolves names the same way: the newest twin goes.
	res = b.runSources(t, "delete", "twin", "--yes", "-o", "json")
	require.NoError(t, res.err)
	var deleted struct {
		Deleted bool            `json:"deleted"`
		Source  json.RawMessage `json:"source"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &deleted))
	require.True(t, deleted.Deleted)
	var src pipelinev1.Source
	require.NoError(t, protojson.Unmarshal(deleted.Source, &src))
	require.Equal(t, newer, src.GetSourceId())
	left := b.sourcesNamedOnServer(t, "twin")
	require.Len(t, left, 1)
	require.Equal(t, older, left[0].GetSourceId())
}

func TestSourcesUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "example.com"}, "want an http or https URL"},
		{[]string{"add", "ftp://example.com/"}, "want an http or https URL"},
		{[]string{"add", "https://example.com/", "--limit", "-1"}, "--limit"},
		{[]string{"add", "https://example.com/", "--limit", "100001"}, "--limit"},
		{[]string{"add", "https://example.com/", "--max-depth", "101"}, "--max-depth"},
		{[]string{"add", "https://example.com/", "--include", "("}, `--include "("`},
		{[]string{"add", "https://example.com/", "--exclude", ""}, "--exclude"},
		{[]string{"add", "https://example.com/", "--output", "yaml"}, "--output"},
		{[]string{"add"}, "accepts 1 arg"},
		{[]string{"get", " "}, "ID_OR_NAME"},
		{[]string{"list", "extra"}, "unknown command"},
	} {
		cmd := sourcesCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append(tc.args, "--server", "127.0.0.1:1"))
		markUsageErrors(cmd)
		err := cmd.ExecuteContext(callCtx(t))
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
		require.Equal(t, exitUsage, exitCode(err), "%v", tc.args)
	}
}

func TestConfirmSourceDelete(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes ": true, "\n": false, "": false, "no\n": false, "yep\n": false} {
		var out bytes.Buffer
		ok, err := confirmSourceDelete(strings.NewReader(in), &out, "delete it?")
		require.NoError(t, err)
		require.Equal(t, want, ok, "answer %q", in)
		require.Equal(t, "delete it? [y/N] ", out.String())
	}
	require.False(t, readerIsTerminal(strings.NewReader("")))
}

func TestSourceExitCode(t *testing.T) {
	t.Parallel()
	job := func(typ pipelinev1.JobType, st pipelinev1.JobStatus, errs int64) *pipelinev1.Job {
		j := &pipelinev1.Job{JobId: uuid.NewString(), Type: typ, Status: st}
		if typ == pipelinev1.JobType_JOB_TYPE_PROCESS {
			j.Processing = &pipelinev1.ProcessingDetails{DocumentCount: 5, ProcessedCount: 5 - errs, ErrorCount: errs}
		}
		return j
	}
	const (
		crawlT   = pipelinev1.JobType_JOB_TYPE_CRAWL
		processT = pipelinev1.JobType_JOB_TYPE_PROCESS
		done     = pipelinev1.JobStatus_JOB_STATUS_COMPLETED
		ready    = pipelinev1.SourceStatus_SOURCE_STATUS_READY
	)
	source := func(st pipelinev1.SourceStatus, msg string) *pipelinev1.Source {
		return &pipelinev1.Source{SourceId: uuid.NewString(), Name: "s", Status: st, Error: msg}
	}
	for _, tc := range []struct {
		name string
		o    sourceOutcome
		code int
	}{
		{"ready, processed cleanly", sourceOutcome{source(ready, ""), job(crawlT, done, 0), job(processT, done, 0)}, exitOK},
		{"ready, nothing to process", sourceOutcome{source(ready, ""), job(crawlT, done, 0), nil}, exitOK},
		{"documents failed", sourceOutcome{source(ready, ""), job(crawlT, done, 0), job(processT, done, 2)}, exitDocErrors},
		{"source reports failures", sourceOutcome{source(ready, "2 of 5 documents failed"), job(crawlT, done, 0), nil}, exitDocErrors},
		{"source failed", sourceOutcome{source(pipelinev1.SourceStatus_SOURCE_STATUS_FAILED, "boom"), job(crawlT, done, 0), job(processT, pipelinev1.JobStatus_JOB_STATUS_FAILED, 5)}, exitJobsNotDone},
		{"crawl cancelled", sourceOutcome{source(ready, "the last crawl was cancelled"), job(crawlT, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, 0), nil}, exitJobsNotDone},
		{"processing cancelled", sourceOutcome{source(ready, ""), job(crawlT, done, 0), job(processT, pipelinev1.JobStatus_JOB_STATUS_CANCELLED, 0)}, exitJobsNotDone},
		{"not settled", sourceOutcome{source(pipelinev1.SourceStatus_SOURCE_STATUS_PROCESSING, ""), job(crawlT, done, 0), nil}, exitError},
	} {
		require.Equal(t, tc.code, sourceExitCode(tc.o), tc.name)
		err := (&sourceWatcher{out: &bytes.Buffer{}}).outcome(tc.o, tc.code)
		require.Equal(t, tc.code, exitCode(err), tc.name)
	}
}

func TestCrawlProgressLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	p := &crawlProgress{w: &out, now: func() time.Time { return now }, every: time.Second}
	snap := func(version int64, st pipelinev1.JobStatus, discovered, fetched, failed int64) *pipelinev1.Job {
		return &pipelinev1.Job{JobId: "j1", Type: pipelinev1.JobType_JOB_TYPE_CRAWL, Status: st, Version: version,
			Crawl: &pipelinev1.CrawlDetails{PagesDiscovered: discovered, PagesFetched: fetched, PagesFailed: failed}}
	}
	running := pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS
	p.Update(snap(1, pipelinev1.JobStatus_JOB_STATUS_PENDING, 0, 0, 0))
	p.Update(snap(2, running, 1, 0, 0)) // held back: less than a second since the last line
	p.Update(snap(2, running, 1, 0, 0)) // a repeat is ignored
	now = now.Add(2 * time.Second)
	p.Tick()                            // prints the held-back snapshot
	p.Update(snap(3, running, 9, 4, 1)) // held back again
	now = now.Add(2 * time.Second)
	p.Update(snap(4, running, 12, 8, 1))
	final := snap(5, pipelinev1.JobStatus_JOB_STATUS_COMPLETED, 12, 10, 1)
	final.StartTime = timestamppb.New(now.Add(-4 * time.Second))
	final.FinishTime = timestamppb.New(now)
	p.Update(final)
	p.Update(snap(6, running, 99, 99, 99)) // nothing after the final line
	p.Finish()
	require.Equal(t, []string{
		"crawl job j1 PENDING: 0 pages fetched of 0 discovered, 0 failed",
		"crawl job j1 IN_PROGRESS: 0 pages fetched of 1 discovered, 0 failed",
		"crawl job j1 IN_PROGRESS: 8 pages fetched of 12 discovered, 1 failed, 2.0 pages/s",
		"crawl job j1 COMPLETED: 10 pages fetched of 12 discovered, 1 failed, in 4s",
	}, strings.Split(strings.TrimSpace(out.String()), "\n"))
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

type report struct {
	RunID             string         `json:"run_id"`
	Seed              uint64         `json:"seed"`
	Short             bool           `json:"short"`
	DurationSec       float64        `json:"duration_s"`
	Documents         int            `json:"documents_ingested"`
	IngestCalls       int            `json:"ingest_calls"`
	IngestRetries     int            `json:"ingest_attempts_retried"`
	Jobs              int            `json:"jobs"`
	JobsCompleted     int            `json:"jobs_completed"`
	JobsFailed        int            `json:"jobs_failed"`
	JobsCancelled     int            `json:"jobs_cancelled"`
	JobsNonTerminal   int            `json:"jobs_non_terminal"`
	DocsProcessed     int            `json:"documents_processed"`
	DocsFailed        int            `json:"documents_failed"`
	DocsPermanentBad  int            `json:"documents_permanently_bad"`
	DocsWithoutResult int            `json:"documents_without_result"`
	ChunksExpected    int64          `json:"chunks_expected"`
	ChunksInStore     int64          `json:"chunks_in_store"`
	CounterMismatches int            `json:"job_counter_mismatches"`
	EmbedderCalls     map[string]int `json:"embedder_outcomes"`
	MilvusUpserts     int            `json:"milvus_upsert_calls"`
	Faults            []*faultRec    `json:"faults"`
	Skipped           []string       `json:"faults_skipped"`
	Memory            memReport      `json:"memory"`
	Problems          []string       `json:"problems"`
}

func (h *harness) check(ctx context.Context, c *corpus, faults []*faultRec, skippedKinds map[string]bool, timedOut bool) (*report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := &report{RunID: h.id, Seed: h.opts.seed, Short: h.opts.short, Documents: len(c.docURI),
		IngestCalls: c.calls, IngestRetries: c.retries, DocsPermanentBad: len(c.badURIs), Faults: faults,
		EmbedderCalls: h.emb.snapshot(), Problems: []string{}, Skipped: []string{}}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if timedOut {
		problem("gave up waiting: jobs still active at the deadline")
	}

	var jobs []*pipelinev1.Job
	if err := retry(ctx, 30*time.Second, func(cctx context.Context) error {
		var err error
		jobs, err = h.listJobs(cctx)
		return err
	}, nil); err != nil {
		return rep, fmt.Errorf("list jobs: %w", err)
	}
	rep.Jobs = len(jobs)
	seen := map[string]bool{}
	// Per document: outcomes over every job that had it.
	type docState struct {
		succeeded bool
		chunks    int64
		failed    bool
		permanent bool
		lastErr   string
	}
	docs := map[string]*docState{}
	for _, j := range jobs {
		seen[j.GetJobId()] = true
		switch j.GetStatus() {
		case pipelinev1.JobStatus_JOB_STATUS_COMPLETED:
			rep.JobsCompleted++
		case pipelinev1.JobStatus_JOB_STATUS_FAILED:
			rep.JobsFailed++
			problem("job %s FAILED: %s", j.GetJobId(), j.GetError())
		case pipelinev1.JobStatus_JOB_STATUS_CANCELLED:
			rep.JobsCancelled++
			problem("job %s CANCELLED (nobody cancelled it)", j.GetJobId())
		default:
			rep.JobsNonTerminal++
			problem("job %s left %s", j.GetJobId(), j.GetStatus())
		}
		results, err := h.jobDocuments(ctx, j.GetJobId())
		if err != nil {
			return rep, fmt.Errorf("job %s documents: %w", j.GetJobId(), err)
		}
		var processed, failed, chunks int64
		for _, r := range results {
			d := docs[r.GetDocumentId()]
			if d == nil {
				d = &docState{chunks: -1}
				docs[r.GetDocumentId()] = d
			}
			switch r.GetStatus() {
			case pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SUCCEEDED,
				pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_SKIPPED:
				processed++
				chunks += r.GetChunkCount()
				if d.succeeded && d.chunks != r.GetChunkCount() {
					problem("document %s has %d chunks in one job and %d in another", r.GetDocumentId(), d.chunks, r.GetChunkCount())
				}
				d.succeeded, d.chunks = true, r.GetChunkCount()
			case pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED:
				failed++
				d.failed = true
				d.permanent = r.GetErrorKind() == pipelinev1.ErrorKind_ERROR_KIND_PERMANENT
				d.lastErr = r.GetLastError()
			}
		}
		p := j.GetProcessing()
		if p.GetProcessedCount() != processed || p.GetErrorCount() != failed || p.GetChunkCount() != chunks ||
			p.GetDocumentCount() != int64(len(results)) {
			rep.CounterMismatches++
			problem("job %s counters (documents %d, processed %d, failed %d, chunks %d) differ from its per-document results (%d, %d, %d, %d)",
				j.GetJobId(), p.GetDocumentCount(), p.GetProcessedCount(), p.GetErrorCount(), p.GetChunkCount(),
				len(results), processed, failed, chunks)
		}
	}
	for id := range c.jobIDs {
		if !seen[id] {
			problem("job %s from an ingest answer is missing from ListJobs", id)
		}
	}

	var unexpected, pending []string
	for id, uri := range c.docURI {
		d := docs[id]
		switch {
		case d == nil:
			rep.DocsWithoutResult++
			problem("document %s (%s) has no result in any job: lost", id, uri)
		case d.succeeded:
			rep.DocsProcessed++
			rep.ChunksExpected += d.chunks
			if c.badURIs[uri] {
				problem("document %s (%s) holds %s but succeeded", id, uri, badMarker)
			}
		case d.failed:
			rep.DocsFailed++
			if !c.badURIs[uri] {
				unexpected = append(unexpected, fmt.Sprintf("%s (%s): %s", id, uri, d.lastErr))
			} else if !d.permanent {
				problem("document %s (%s) failed but not as PERMANENT", id, uri)
			}
		default:
			rep.DocsWithoutResult++
			pending = append(pending, fmt.Sprintf("%s (%s)", id, uri))
		}
	}
	sort.Strings(pending)
	if len(pending) > 0 {
		problem("%d document(s) still pending, e.g. %s", len(pending), strings.Join(pending[:min(5, len(pending))], ", "))
	}
	sort.Strings(unexpected)
	for i, u := range unexpected {
		if i == 10 {
			problem("... and %d more documents failed that should not have", len(unexpected)-10)
			break
		}
		problem("document failed that should not have: %s", u)
	}

	var count struct {
		Rows int64 `json:"rows"`
	}
	if err := getJSON(fmt.Sprintf("http://%s/count?collection=%s", h.milvusControl, collection), &count); err != nil {
		return rep, fmt.Errorf("milvusfake count: %w", err)
	}
	rep.ChunksInStore = count.Rows
	switch {
	case count.Rows > rep.ChunksExpected:
		problem("vector store holds %d chunks, %d more than the %d expected: duplicates or orphans", count.Rows, count.Rows-rep.ChunksExpected, rep.ChunksExpected)
	case count.Rows < rep.ChunksExpected:
		problem("vector store holds %d chunks, %d fewer than the %d expected: lost vectors", count.Rows, rep.ChunksExpected-count.Rows, rep.ChunksExpected)
	}
	var calls struct {
		Calls int `json:"calls"`
	}
	if err := getJSON(fmt.Sprintf("http://%s/calls?method=Upsert", h.milvusControl), &calls); err == nil {
		rep.MilvusUpserts = calls.Calls
	}
	for _, e := range h.ps.unexpectedExits() {
		problem("process died on its own: %s", e)
	}
	kinds := map[string]bool{}
	for _, f := range faults {
		if f.Failed {
			problem("fault %s could not be injected as planned: %s", f.Kind, f.Detail)
			continue
		}
		kinds[f.Kind] = true
	}
	for _, pf := range h.plan() {
		if !kinds[pf.kind] && !skippedKinds[pf.kind] {
			problem("fault %s was never injected", pf.kind)
			kinds[pf.kind] = true // once
		}
	}
	rep.Memory = h.mem.report()
	rep.DurationSec = time.Since(h.started).Seconds()
	return rep, nil
}

func (h *harness) jobDocuments(ctx context.Context, jobID string) ([]*pipelinev1.DocumentResult, error) {
	var out []*pipelinev1.DocumentResult
	token := ""
	for {
		var resp *pipelinev1.ListJobDocumentsResponse
		err := retry(ctx, 30*time.Second, func(cctx context.Context) error {
			var err error
			resp, err = h.jobs.ListJobDocuments(cctx, &pipelinev1.ListJobDocumentsRequest{JobId: jobID, PageSize: 1000, PageToken: token})
			return err
		}, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetResults()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\n== chaos run %s (seed %d, %s mode, %.0fs) ==\n", r.RunID, r.Seed, map[bool]string{true: "short", false: "full"}[r.Short], r.DurationSec)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("documents ingested", fmt.Sprintf("%d in %d calls (%d attempts retried)", r.Documents, r.IngestCalls, r.IngestRetries))
	row("jobs", r.Jobs)
	row("jobs completed / failed / cancelled / non-terminal", fmt.Sprintf("%d / %d / %d / %d", r.JobsCompleted, r.JobsFailed, r.JobsCancelled, r.JobsNonTerminal))
	row("documents processed", r.DocsProcessed)
	row("documents failed (expected: the permanently bad ones)", fmt.Sprintf("%d (%d permanently bad)", r.DocsFailed, r.DocsPermanentBad))
	row("documents without a result", r.DocsWithoutResult)
	row("chunks in vector store / expected", fmt.Sprintf("%d / %d", r.ChunksInStore, r.ChunksExpected))
	row("job counter mismatches", r.CounterMismatches)
	row("milvus Upsert calls", r.MilvusUpserts)
	var kinds []string
	for k, v := range r.EmbedderCalls {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	row("embedder outcomes", strings.Join(kinds, " "))
	tw.Flush()

	fmt.Fprintln(w, "\nfaults: lasted = injecting it (restarts included); next progress = from the fault until documents")
	fmt.Fprintln(w, "were seen being done again after it; hit batches = the batches it struck; requeued = how many of them the")
	fmt.Fprintln(w, "reconciler put back in the queue because of this fault (the latest one to hit them), and when the last; claimed again = when the last of them was claimed again")
	fmt.Fprintln(w, "by a worker (or done; a batch running under a live worker's claim counts when done); all done = when the last was finished;")
	fmt.Fprintln(w, "active jobs = when every job active at the fault was terminal")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tat\tfault\tlasted\tnext progress\thit batches\trequeued\tclaimed again\tall done\tactive jobs done")
	var t0 time.Time
	if len(r.Faults) > 0 {
		t0 = r.Faults[0].At
	}
	secs := func(s float64) string {
		if s < 0 {
			return "never"
		}
		return fmt.Sprintf("%.1fs", s)
	}
	for i, f := range r.Faults {
		requeued := fmt.Sprintf("%d", f.Requeued)
		if f.Requeued > 0 {
			requeued += " after " + secs(f.RequeuedSec)
		}
		fmt.Fprintf(tw, "%d\t+%.1fs\t%s\t%.1fs\t%s\t%d %s\t%s\t%s\t%s\t%s\n", i+1, f.At.Sub(t0).Seconds(), f.Kind,
			f.ReadyAt.Sub(f.At).Seconds(), secs(f.NextProgressSec), f.Affected, f.AffectedWhat, requeued,
			secs(f.AffectedClaimedSec), secs(f.AffectedDoneSec), secs(f.ActiveDoneSec))
	}
	tw.Flush()
	for i, f := range r.Faults {
		fmt.Fprintf(w, "%d. %s: %s\n", i+1, f.Kind, f.Detail)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "continuously, embedder faults:\t10% of calls: 500, 503, 429 Retry-After 1, dropped connection, a few hangs past the 30s client timeout; 400 for "+badMarker)
	tw.Flush()
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "skipped:", s)
	}

	fmt.Fprintln(w, "\nmemory (from /proc/<pid>/status; peak VmRSS sampled every 500 ms and VmHWM, the kernel's peak):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "process\tpid\tpeak VmRSS\tVmHWM")
	for _, u := range r.Memory.Processes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", u.Name, u.PID, mib(u.PeakRSSKB), mib(u.HWMKB))
	}
	tw.Flush()
	fmt.Fprintf(w, "server peak (any incarnation): %s; worker peak: %s", mib(r.Memory.ServerPeakKB), mib(r.Memory.WorkerPeakKB))
	if r.Memory.PostgresSumPeakKB > 0 {
		fmt.Fprintf(w, "; private Postgres, up to %d processes: %s (their private memory summed, plus the largest shared and file-backed parts once)",
			r.Memory.PostgresProcs, mib(r.Memory.PostgresSumPeakKB))
	}
	fmt.Fprintln(w)
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "\nPASS: nothing lost, nothing duplicated, counters agree, every job terminal")
		return
	}
	fmt.Fprintf(w, "\nFAIL: %d problem(s):\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintln(w, " -", p)
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

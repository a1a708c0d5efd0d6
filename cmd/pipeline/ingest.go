package main

// `pipeline ingest` uploads a directory of documents to a source and watches the processing
// jobs that start for them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiclient "github.com/pipeline-dev/pipeline/client"
	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

const (
	// maxFileBytes is the server's limit on one document's content.
	maxFileBytes = 10 << 20
	// maxURIBytes is the server's limit on a document's uri.
	maxURIBytes = 2048
	// maxBatchDocs and maxBatchBytes bound one IngestDocuments request. The server takes up to
	// 1000 documents; smaller requests keep each job, and each retry of a failed request, small.
	maxBatchDocs  = 500
	maxBatchBytes = 8 << 20
)

// contentTypes are the files ingest uploads, by lower-case extension.
var contentTypes = map[string]string{
	".md":       "text/markdown",
	".markdown": "text/markdown",
	".txt":      "text/plain",
	".html":     "text/html",
	".htm":      "text/html",
}

const ingestLong = `Upload every Markdown, text and HTML file under DIR (.md, .markdown, .txt, .html,
.htm) to the source named by --source, then watch the processing until it ends.

The source is looked up by exact name (the newest one when several share it); when none has
the name, an upload source is created with it. Each document's uri is its path relative to DIR
with forward slashes, so uploading the same directory again replaces the documents in place, and
processing skips those whose content did not change.

Hidden files and directories are skipped, as are symbolic links that lead outside DIR. Files
over 10 MiB and files that are not UTF-8 text are skipped with a warning on stderr.

Uploads go in requests of at most 500 documents and about 8 MiB each; every request starts its
own processing job, and all of them are watched. On a terminal each job gets a progress bar;
otherwise a line is printed when a job changes (at most one a second per job). With
--output json, every watch event is printed as one JSON object {"job": {...}} per line, and a
final {"summary": {...}} object ends the output. A watch that loses the server reconnects and goes
on where it was, for up to a minute without an answer.

Exit codes: 0 every job completed and no document failed (or --wait=false and the upload
succeeded), 3 every job completed but some documents failed, 4 a job failed or was cancelled;
the others as for every command (pipeline help exit-codes).`

func ingestCmd() *cobra.Command {
	var (
		sourceName string
		wait       bool
	)
	cmd := &cobra.Command{
		Use:   "ingest DIR --source NAME",
		Short: "Upload a directory of Markdown, text and HTML files and watch them being processed",
		Long:  ingestLong,
		Example: `  pipeline ingest ./docs --source handbook
  pipeline ingest ./docs --source handbook --wait=false --output json`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().StringVar(&sourceName, "source", "", "name of the source to upload to; an upload source is created when none has it (required)")
	cmd.Flags().BoolVar(&wait, "wait", true, "watch the processing jobs until they end")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runIngest(cmd.Context(), ingestParams{
			dir:      args[0],
			source:   sourceName,
			wait:     wait,
			settings: settings,
			out:      cmd.OutOrStdout(),
			errOut:   cmd.ErrOrStderr(),
			retry:    defaultWatchRetry,
		})
	}
	return cmd
}

type ingestParams struct {
	dir      string
	source   string
	wait     bool
	settings *clientSettings
	out      io.Writer // results and progress
	errOut   io.Writer // warnings
	retry    watchRetry
}

// ingestSummary is the last JSON object ingest prints, under the key "summary".
type ingestSummary struct {
	SourceID      string            `json:"source_id"`
	SourceName    string            `json:"source_name"`
	SourceCreated bool              `json:"source_created"`
	Documents     int               `json:"documents"`     // uploaded
	Changed       int               `json:"changed"`       // new or with changed content
	SkippedFiles  int               `json:"skipped_files"` // skipped with a warning
	Waited        bool              `json:"waited"`
	Jobs          []json.RawMessage `json:"jobs"` // the last snapshot of each job
	ExitCode      int               `json:"exit_code"`
}

func runIngest(ctx context.Context, p ingestParams) error {
	name := strings.TrimSpace(p.source)
	if name == "" {
		return usageErrorf("--source: give the name of the source to upload to")
	}
	if err := p.settings.validate(); err != nil {
		return err
	}
	text := p.settings.Output == "text"
	say := func(format string, args ...any) {
		if text {
			fmt.Fprintf(p.out, format+"\n", args...)
		}
	}
	skipped := 0
	files, err := walkCorpus(p.dir, maxFileBytes, func(format string, args ...any) {
		skipped++
		fmt.Fprintf(p.errOut, "warning: "+format+"\n", args...)
	})
	if err != nil {
		return &usageError{err: fmt.Errorf("DIR: %w", err)}
	}
	if len(files) == 0 {
		return usageErrorf("DIR %s: no .md, .markdown, .txt, .html or .htm files to upload", p.dir)
	}

	c, err := dial(p.settings)
	if err != nil {
		return err
	}
	defer c.Close()

	src, created, sameName, err := c.findOrCreateSource(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case created:
		say("created upload source %q (%s)", src.GetName(), src.GetSourceId())
	case sameName > 1:
		say("using source %q (%s), the newest of %d sources with this name", src.GetName(), src.GetSourceId(), sameName)
	default:
		say("using source %q (%s)", src.GetName(), src.GetSourceId())
	}

	sum := ingestSummary{SourceID: src.GetSourceId(), SourceName: src.GetName(), SourceCreated: created, SkippedFiles: skipped, Waited: p.wait}
	var jobs []*pipelinev1.Job
	for _, b := range batches(files, maxBatchDocs, maxBatchBytes) {
		resps, err := c.ingestBatch(ctx, src.GetSourceId(), b)
		for _, r := range resps {
			jobs = append(jobs, r.GetJob())
			sum.Documents += len(r.GetDocuments())
			sum.Changed += int(r.GetChangedCount())
			say("uploaded %s (%d new or changed): job %s", plural(int64(len(r.GetDocuments())), "document", "documents"),
				r.GetChangedCount(), r.GetJob().GetJobId())
		}
		if err != nil {
			if len(jobs) > 0 {
				return fmt.Errorf("%w (%d of %d documents were uploaded before, and their jobs run: %s)",
					err, sum.Documents, len(files), strings.Join(jobIDs(jobs), ", "))
			}
			return err
		}
	}
	if len(jobs) > 1 {
		say("the upload took %d requests, so %d jobs process it", len(jobs), len(jobs))
	}

	if p.wait {
		finals, err := c.watchJobs(ctx, jobs, newProgress(p.out, p.settings.Output, jobIDs(jobs)), p.retry)
		if err != nil {
			return err
		}
		jobs = finals
		sum.ExitCode = jobsExitCode(jobs)
	} else {
		say("not waiting; the jobs go on on the server")
	}

	if !text {
		for _, j := range jobs {
			b, err := protoJSON.Marshal(j)
			if err != nil {
				return err
			}
			sum.Jobs = append(sum.Jobs, b)
		}
		b, err := json.Marshal(map[string]any{"summary": sum})
		if err != nil {
			return err
		}
		fmt.Fprintf(p.out, "%s\n", b)
	}
	return ingestOutcome(jobs, sum.ExitCode, say)
}

// ingestOutcome says how the jobs ended and returns the error that carries the exit code.
func ingestOutcome(jobs []*pipelinev1.Job, code int, say func(string, ...any)) error {
	if code == exitOK {
		var processed, total int64
		for _, j := range jobs {
			processed += j.GetProcessing().GetProcessedCount()
			total += j.GetProcessing().GetDocumentCount()
		}
		if jobTerminal(jobs[0]) {
			say("done: %d/%d documents processed", processed, total)
		}
		return nil
	}
	return jobsOutcome(jobs, code)
}

// jobsOutcome is the error that carries code, the exit code of the final states of watched
// jobs (jobsExitCode), and says why; nil for exitOK.
func jobsOutcome(jobs []*pipelinev1.Job, code int) error {
	switch code {
	case exitOK:
		return nil
	case exitDocErrors:
		var failed, total int64
		var which []string
		for _, j := range jobs {
			failed += j.GetProcessing().GetErrorCount()
			total += j.GetProcessing().GetDocumentCount()
			if j.GetProcessing().GetErrorCount() > 0 {
				which = append(which, "pipeline jobs documents "+j.GetJobId()+" --failed")
			}
		}
		return &exitCodeError{code: code, err: fmt.Errorf("%d of %d documents failed; %s shows which and why",
			failed, total, strings.Join(which, ", "))}
	case exitJobsNotDone:
		var bad []string
		for _, j := range jobs {
			if s := j.GetStatus(); s == pipelinev1.JobStatus_JOB_STATUS_FAILED || s == pipelinev1.JobStatus_JOB_STATUS_CANCELLED {
				msg := fmt.Sprintf("job %s %s", j.GetJobId(), statusName(s))
				if j.GetError() != "" {
					msg += ": " + j.GetError()
				}
				bad = append(bad, msg)
			}
		}
		return &exitCodeError{code: code, err: errors.New(strings.Join(bad, "; "))}
	}
	return &exitCodeError{code: code, err: errors.New("the watch ended before every job did")}
}

func jobIDs(jobs []*pipelinev1.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.GetJobId()
	}
	return out
}

// findOrCreateSource returns the newest source named name, or a new upload source with that
// name. sameName is how many sources have the name.
func (c *client) findOrCreateSource(ctx context.Context, name string) (src *pipelinev1.Source, created bool, sameName int, err error) {
	all, err := c.listSources(ctx)
	if err != nil {
		return nil, false, 0, err
	}
	if m := sourcesNamed(all, name); len(m) > 0 {
		return m[0], false, len(m), nil
	}
	cctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.content.CreateSource(cctx, &pipelinev1.CreateSourceRequest{Name: name})
	if err != nil {
		return nil, false, 0, c.callError("create source", err)
	}
	return resp.GetSource(), true, 0, nil
}

// ingestBatch uploads one batch. A server that refuses the request as too large
// (ResourceExhausted: its message size limit may be below maxBatchBytes) gets it again in two
// halves; the refused request saved nothing, since the server rejects it before reading it.
func (c *client) ingestBatch(ctx context.Context, sourceID string, files []corpusFile) ([]*pipelinev1.IngestDocumentsResponse, error) {
	req := &pipelinev1.IngestDocumentsRequest{SourceId: sourceID, Documents: make([]*pipelinev1.DocumentInput, len(files))}
	for i, f := range files {
		req.Documents[i] = &pipelinev1.DocumentInput{Uri: f.URI, ContentType: f.ContentType, Content: f.Content}
	}
	cctx, cancel := c.unary(ctx)
	resp, err := c.content.IngestDocuments(cctx, req)
	cancel()
	if status.Code(err) == codes.ResourceExhausted && len(files) > 1 {
		half := len(files) / 2
		first, err := c.ingestBatch(ctx, sourceID, files[:half])
		if err != nil {
			return first, err
		}
		second, err := c.ingestBatch(ctx, sourceID, files[half:])
		return append(first, second...), err
	}
	if err != nil {
		what := fmt.Sprintf("upload %s", plural(int64(len(files)), "document", "documents"))
		if len(files) == 1 {
			what = "upload " + files[0].URI
		}
		return nil, c.callError(what, err)
	}
	return []*pipelinev1.IngestDocumentsResponse{resp}, nil
}

// --- watching

// watchRetry says how a broken watch is resumed.
type watchRetry struct {
	first  time.Duration // first wait before watching again
	max    time.Duration // longest wait between attempts
	giveUp time.Duration // give up when no attempt succeeded for this long
}

var defaultWatchRetry = watchRetry{first: 250 * time.Millisecond, max: 5 * time.Second, giveUp: time.Minute}

// watchJobs watches every job until it is terminal, feeding p, and returns the final snapshots
// in the order of jobs.
func (c *client) watchJobs(ctx context.Context, jobs []*pipelinev1.Job, p progress, retry watchRetry) ([]*pipelinev1.Job, error) {
	finals := make([]*pipelinev1.Job, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for i, j := range jobs {
		g.Go(func() error {
			last, err := c.watchJob(gctx, j.GetJobId(), retry, p.Update)
			finals[i] = last
			return err
		})
	}
	stopTicks := make(chan struct{})
	var ticks sync.WaitGroup
	ticks.Go(func() {
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-stopTicks:
				return
			case <-t.C:
				p.Tick()
			}
		}
	})
	err := g.Wait()
	close(stopTicks)
	ticks.Wait()
	p.Finish()
	if err != nil {
		if ctx.Err() != nil {
			var open []string
			for i, j := range jobs {
				if !jobTerminal(finals[i]) {
					open = append(open, j.GetJobId())
				}
			}
			return nil, &exitCodeError{code: exitInterrupted, err: fmt.Errorf("interrupted while waiting; these jobs go on on the server: %s", strings.Join(open, ", "))}
		}
		return nil, err
	}
	return finals, nil
}

// watchJob follows one job until it is terminal with client.WatchJob, which opens the watch
// again when it breaks with Unavailable (a server restarting or shutting down) and passes each
// state once, and returns the final state.
func (c *client) watchJob(ctx context.Context, jobID string, retry watchRetry, onJob func(*pipelinev1.Job)) (*pipelinev1.Job, error) {
	last, err := apiclient.WatchJob(ctx, c.jobs, jobID, apiclient.WatchOptions{
		OnUpdate:    onJob,
		MinBackoff:  retry.first,
		MaxBackoff:  retry.max,
		GiveUpAfter: retry.giveUp,
	})
	if err != nil {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		return last, c.callError("watch job "+jobID, err)
	}
	return last, nil
}

// --- files

// corpusFile is one file to upload.
type corpusFile struct {
	URI         string // path relative to the walked directory, with forward slashes
	ContentType string
	Content     string
}

// walkCorpus returns the files under root that ingest uploads, in lexical order. Files it
// leaves out for a reason the user may not expect (too large, not UTF-8 text, a link outside
// root, unreadable) are reported through warn; hidden entries and other extensions are left out
// silently.
func walkCorpus(root string, maxBytes int64, warn func(format string, args ...any)) ([]corpusFile, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", root)
	}
	realRoot, err := realPath(root)
	if err != nil {
		return nil, err
	}
	if li, err := os.Lstat(root); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		root = realRoot // WalkDir does not follow a link it starts from
	}
	var out []corpusFile
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if path == root {
			return err
		}
		if err != nil {
			warn("skipping %s: %v", path, err)
			return nil // WalkDir already skips a directory it cannot read
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		ct, ok := contentTypes[strings.ToLower(filepath.Ext(d.Name()))]
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		uri := filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := realPath(path)
			if err != nil {
				warn("skipping %s: %v", path, err)
				return nil
			}
			if !within(realRoot, target) {
				warn("skipping %s: a link to %s, outside %s", path, target, root)
				return nil
			}
		case !d.Type().IsRegular():
			return nil // devices, sockets, pipes
		}
		fi, err := os.Stat(path) // follows a link to its file
		if err != nil {
			warn("skipping %s: %v", path, err)
			return nil
		}
		if !fi.Mode().IsRegular() {
			return nil // a link to a directory: its files are walked under their own path
		}
		if fi.Size() > maxBytes {
			warn("skipping %s: %s, over the limit of %s", path, byteSize(fi.Size()), byteSize(maxBytes))
			return nil
		}
		if len(uri) > maxURIBytes {
			warn("skipping %s: its path is longer than %d bytes", path, maxURIBytes)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			warn("skipping %s: %v", path, err)
			return nil
		}
		if int64(len(b)) > maxBytes { // grew since Stat
			warn("skipping %s: %s, over the limit of %s", path, byteSize(int64(len(b))), byteSize(maxBytes))
			return nil
		}
		// The server stores text: it refuses invalid UTF-8 and NUL bytes.
		if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
			warn("skipping %s: not UTF-8 text", path)
			return nil
		}
		out = append(out, corpusFile{URI: uri, ContentType: ct, Content: string(b)})
		return nil
	})
	return out, err
}

// realPath is the absolute path of p with every symbolic link resolved.
func realPath(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Abs(r)
}

// within reports whether path is root or below it; both are absolute, with links resolved.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func byteSize(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	if n >= 1<<10 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// batches splits files into requests of at most maxDocs documents and about maxBytes bytes; a
// file larger than maxBytes goes alone.
func batches(files []corpusFile, maxDocs, maxBytes int) [][]corpusFile {
	var out [][]corpusFile
	var cur []corpusFile
	size := 0
	for _, f := range files {
		n := requestSize(f)
		if len(cur) > 0 && (len(cur) == maxDocs || size+n > maxBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, f)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// requestSize estimates what a file adds to an IngestDocuments request: its fields and a little
// protobuf framing.
func requestSize(f corpusFile) int {
	return len(f.Content) + len(f.URI) + len(f.ContentType) + 16
}

package main

// `pipeline jobs` reads and steers jobs: list them with the filters ListJobs offers, show one,
// list its per-document results, watch it to its end, cancel it and retry it.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

func jobsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, show, watch, cancel and retry jobs (crawls and processing runs)",
		Long: `jobs reads and steers the server's jobs. A crawl job fetches a web source's pages; a
processing job chunks, embeds and stores a set of documents. Jobs are PENDING, then
IN_PROGRESS, then COMPLETED, FAILED or CANCELLED, and never change after that.`,
	}
	cmd.AddCommand(jobsListCmd(), jobsGetCmd(), jobsDocumentsCmd(), jobsWatchCmd(), jobsCancelCmd(), jobsRetryCmd())
	return cmd
}

// parseJobID checks a JOB_ID argument.
func parseJobID(arg string) (string, error) {
	id, err := uuid.Parse(strings.TrimSpace(arg))
	if err != nil {
		return "", usageErrorf("JOB_ID: want a job id (a UUID), got %q", arg)
	}
	return id.String(), nil
}

// parseJobStatus reads --status: pending, in_progress (or in-progress), completed, failed,
// cancelled, in any case, with or without the JOB_STATUS_ prefix.
func parseJobStatus(s string) (pipelinev1.JobStatus, error) {
	if s == "" {
		return pipelinev1.JobStatus_JOB_STATUS_UNSPECIFIED, nil
	}
	name := "JOB_STATUS_" + strings.TrimPrefix(strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(s)), "-", "_"), "JOB_STATUS_")
	v, ok := pipelinev1.JobStatus_value[name]
	if !ok || v == 0 {
		return 0, usageErrorf("--status: want pending, in_progress, completed, failed or cancelled, got %q", s)
	}
	return pipelinev1.JobStatus(v), nil
}

// parseJobType reads --type: crawl or process.
func parseJobType(s string) (pipelinev1.JobType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return pipelinev1.JobType_JOB_TYPE_UNSPECIFIED, nil
	case "crawl":
		return pipelinev1.JobType_JOB_TYPE_CRAWL, nil
	case "process", "processing":
		return pipelinev1.JobType_JOB_TYPE_PROCESS, nil
	}
	return 0, usageErrorf("--type: want crawl or process, got %q", s)
}

// jobTypeName is the job type without its enum prefix, in lower case: crawl, process.
func jobTypeName(t pipelinev1.JobType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "JOB_TYPE_"))
}

// runWithJob sets cmd's RunE: check the JOB_ID argument, connect, then run with the id.
func runWithJob(cmd *cobra.Command, settings *clientSettings, run func(ctx context.Context, c *client, id string, out io.Writer) error) {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := parseJobID(args[0])
		if err != nil {
			return err
		}
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		return run(cmd.Context(), c, id, cmd.OutOrStdout())
	}
}

// --- list

func jobsListCmd() *cobra.Command {
	var (
		statusFlag, typeFlag, source, pageToken string
		limit                                   int
		all                                     bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first, filtered by status, type and source",
		Long: `list prints jobs, newest first: id, type, status, source, progress and creation time. The
filters combine: --status, --type and --source (a source's id or name; the newest source with
that name). One page of at most --limit jobs is printed; when there are more, the command for
the next page (with --page-token) is printed on stderr. --all follows every page instead.

--output json prints one ListJobsResponse (with next_page_token when there are more; with --all,
every job and no token).`,
		Example: `  pipeline jobs list
  pipeline jobs list --status failed --source handbook
  pipeline jobs list --type crawl --limit 10 --output json
  pipeline jobs list --all --status in_progress -o json`,
		Args: cobra.NoArgs,
	}
	settings := registerClientFlags(cmd)
	fs := cmd.Flags()
	fs.StringVar(&statusFlag, "status", "", "only jobs in this status: pending, in_progress, completed, failed, cancelled")
	fs.StringVar(&typeFlag, "type", "", "only jobs of this type: crawl or process")
	fs.StringVar(&source, "source", "", "only jobs of this source, by id or name")
	fs.IntVar(&limit, "limit", 50, "jobs per page (1-1000)")
	fs.StringVar(&pageToken, "page-token", "", "the page to print, as printed after the previous page")
	fs.BoolVar(&all, "all", false, "print every page")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		st, err := parseJobStatus(statusFlag)
		if err != nil {
			return err
		}
		typ, err := parseJobType(typeFlag)
		if err != nil {
			return err
		}
		if limit < 1 || limit > 1000 {
			return usageErrorf("--limit: want 1-1000, got %d", limit)
		}
		if all && pageToken != "" {
			return usageErrorf("--all and --page-token: give one or the other")
		}
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		req := &pipelinev1.ListJobsRequest{Type: typ, Status: st, PageSize: int32(limit), PageToken: pageToken}
		if source != "" {
			src, err := newSourceWatcher(c, cmd.OutOrStdout()).resolve(ctx, source)
			if err != nil {
				return err
			}
			req.SourceId = src.GetSourceId()
		}
		resp, err := c.listJobs(ctx, req, all)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if settings.Output == "json" {
			return printProto(out, resp)
		}
		printJobs(out, resp.GetJobs(), time.Now())
		if next := resp.GetNextPageToken(); next != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "more jobs: add --page-token %s (or use --all)\n", next)
		}
		return nil
	}
	return cmd
}

// listJobs reads one page, or with all every page into one response without a token.
func (c *client) listJobs(ctx context.Context, req *pipelinev1.ListJobsRequest, all bool) (*pipelinev1.ListJobsResponse, error) {
	out := &pipelinev1.ListJobsResponse{}
	for {
		cctx, cancel := c.unary(ctx)
		resp, err := c.jobs.ListJobs(cctx, req)
		cancel()
		if err != nil {
			return nil, c.callError("list jobs", err)
		}
		out.Jobs = append(out.Jobs, resp.GetJobs()...)
		out.NextPageToken = resp.GetNextPageToken()
		if !all || out.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = out.NextPageToken
	}
}

// printJobs writes one table row per job.
func printJobs(w io.Writer, jobs []*pipelinev1.Job, now time.Time) {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "no jobs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tSOURCE\tPROGRESS\tCREATED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", j.GetJobId(), jobTypeName(j.GetType()), statusName(j.GetStatus()),
			j.GetSourceId(), jobProgress(j), roundDuration(now.Sub(j.GetCreateTime().AsTime()).Truncate(time.Second)))
	}
	_ = tw.Flush()
}

// jobProgress sums up a job's counters in a few words.
func jobProgress(j *pipelinev1.Job) string {
	if j.GetType() == pipelinev1.JobType_JOB_TYPE_CRAWL {
		c := j.GetCrawl()
		return fmt.Sprintf("%d/%d pages, %d failed", c.GetPagesFetched(), c.GetPagesDiscovered(), c.GetPagesFailed())
	}
	p := j.GetProcessing()
	return fmt.Sprintf("%d/%d docs, %s", p.GetProcessedCount(), p.GetDocumentCount(), plural(p.GetErrorCount(), "error", "errors"))
}

// --- get

func jobsGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get JOB_ID",
		Short: "Show one job: status, counters, error and times",
		Long: `get shows one job: type, status, source, counters (documents processed and failed, chunks;
or pages fetched, discovered and failed for a crawl), the error of a failed job, the job it
retries, and its times. --output json prints the GetJobResponse.`,
		Example: `  pipeline jobs get 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01
  pipeline jobs get 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 -o json`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	runWithJob(cmd, settings, func(ctx context.Context, c *client, id string, out io.Writer) error {
		job, err := c.getJob(ctx, id)
		if err != nil {
			return err
		}
		if settings.Output == "json" {
			return printProto(out, &pipelinev1.GetJobResponse{Job: job})
		}
		printJobDetails(out, job)
		return nil
	})
	return cmd
}

func (c *client) getJob(ctx context.Context, id string) (*pipelinev1.Job, error) {
	cctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.jobs.GetJob(cctx, &pipelinev1.GetJobRequest{JobId: id})
	if err != nil {
		return nil, c.callError("get job "+id, err)
	}
	return resp.GetJob(), nil
}

// printJobDetails writes one "key: value" line per property of the job.
func printJobDetails(out io.Writer, j *pipelinev1.Job) {
	line, flush := detailLines(out)
	defer flush()
	line("id", "%s", j.GetJobId())
	line("type", "%s", jobTypeName(j.GetType()))
	line("status", "%s", statusName(j.GetStatus()))
	if e := j.GetError(); e != "" {
		line("error", "%s", sourceOneLine(e))
	}
	line("source", "%s", j.GetSourceId())
	if r := j.GetRetryOfJobId(); r != "" {
		line("retry of", "%s", r)
	}
	if j.GetType() == pipelinev1.JobType_JOB_TYPE_CRAWL {
		c := j.GetCrawl()
		line("pages", "%d fetched of %d discovered, %d failed", c.GetPagesFetched(), c.GetPagesDiscovered(), c.GetPagesFailed())
		if x := c.GetExternalId(); x != "" {
			line("external id", "%s", x)
		}
	}
	if p := j.GetProcessing(); p != nil {
		line("documents", "%d processed of %d, %d failed, %s", p.GetProcessedCount(), p.GetDocumentCount(), p.GetErrorCount(),
			plural(p.GetChunkCount(), "chunk", "chunks"))
	}
	line("created", "%s", j.GetCreateTime().AsTime().Local().Format(time.DateTime))
	if t := j.GetStartTime(); t != nil {
		line("started", "%s", t.AsTime().Local().Format(time.DateTime))
	}
	if t := j.GetFinishTime(); t != nil {
		s := t.AsTime().Local().Format(time.DateTime)
		if st := j.GetStartTime(); st != nil {
			s += " (took " + roundDuration(t.AsTime().Sub(st.AsTime())) + ")"
		}
		line("finished", "%s", s)
	}
	if d := j.GetTimeout(); d != nil {
		line("timeout", "%s", d.AsDuration())
	}
	line("version", "%d", j.GetVersion())
}

// --- documents

func jobsDocumentsCmd() *cobra.Command {
	var failed bool
	cmd := &cobra.Command{
		Use:   "documents JOB_ID",
		Short: "List a processing job's per-document results: status, chunks, attempts, error",
		Long: `documents lists the result of every document a processing job covers, ordered by document
id: status (PENDING, SUCCEEDED, FAILED, SKIPPED as unchanged), chunks stored, attempts and the
last error with its kind (transient or permanent). --failed shows only the documents that
failed. --output json prints one ListJobDocumentsResponse with every (or every failed) result.`,
		Example: `  pipeline jobs documents 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 --failed`,
		Args:    cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().BoolVar(&failed, "failed", false, "only the documents that failed")
	runWithJob(cmd, settings, func(ctx context.Context, c *client, id string, out io.Writer) error {
		var results []*pipelinev1.DocumentResult
		req := &pipelinev1.ListJobDocumentsRequest{JobId: id, PageSize: 1000}
		for {
			cctx, cancel := c.unary(ctx)
			resp, err := c.jobs.ListJobDocuments(cctx, req)
			cancel()
			if err != nil {
				return c.callError("list the documents of job "+id, err)
			}
			for _, r := range resp.GetResults() {
				if !failed || r.GetStatus() == pipelinev1.DocumentResultStatus_DOCUMENT_RESULT_STATUS_FAILED {
					results = append(results, r)
				}
			}
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if settings.Output == "json" {
			return printProto(out, &pipelinev1.ListJobDocumentsResponse{Results: results})
		}
		if len(results) == 0 {
			fmt.Fprintln(out, "no documents")
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DOCUMENT\tSTATUS\tCHUNKS\tATTEMPTS\tERROR")
		for _, r := range results {
			e := sourceOneLine(r.GetLastError())
			if k := r.GetErrorKind(); e != "" && k != pipelinev1.ErrorKind_ERROR_KIND_UNSPECIFIED {
				e = strings.ToLower(strings.TrimPrefix(k.String(), "ERROR_KIND_")) + ": " + e
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.GetDocumentId(), strings.TrimPrefix(r.GetStatus().String(), "DOCUMENT_RESULT_STATUS_"),
				r.GetChunkCount(), r.GetAttempts(), e)
		}
		return tw.Flush()
	})
	return cmd
}

// --- watch

const jobWatchHelp = `On a terminal the job gets a progress bar (documents or pages done, errors, rate and time
left); otherwise a line is printed when the job changes (at most one a second) and always one
for its end. With --output json every state is printed as one WatchJobResponse object per
line, the last one terminal. A watch that loses the server (a restart, the network) opens
again and goes on where it was, for up to a minute without an answer.`

func jobsWatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow a job until it ends, with a progress bar; the exit code says how it ended",
		Long: `watch follows a job until it is COMPLETED, FAILED or CANCELLED.

` + jobWatchHelp + `

The exit code is the job's outcome: 0 COMPLETED with no failed document, 3 COMPLETED but some
documents failed, 4 FAILED or CANCELLED (see pipeline help exit-codes for the others).`,
		Example: `  pipeline jobs watch 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01
  pipeline jobs watch 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 -o json | jq .job.status`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	runWithJob(cmd, settings, func(ctx context.Context, c *client, id string, out io.Writer) error {
		job, err := c.getJob(ctx, id)
		if err != nil {
			return err
		}
		return c.watchToEnd(ctx, out, job)
	})
	return cmd
}

// watchToEnd watches job until it is terminal, showing its progress, and returns the error that
// carries the exit code of its outcome.
func (c *client) watchToEnd(ctx context.Context, out io.Writer, job *pipelinev1.Job) error {
	var p progress
	switch {
	case c.settings.Output == "json":
		p = &jsonProgress{w: out}
	case job.GetType() == pipelinev1.JobType_JOB_TYPE_CRAWL:
		p = newCrawlProgress(out)
	default:
		p = newProgress(out, c.settings.Output, []string{job.GetJobId()})
	}
	finals, err := c.watchJobs(ctx, []*pipelinev1.Job{job}, p, defaultWatchRetry)
	if err != nil {
		return err
	}
	return jobsOutcome(finals, jobsExitCode(finals))
}

// --- cancel, retry

func jobsCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a PENDING or IN_PROGRESS job",
		Long: `cancel stops a PENDING or IN_PROGRESS job: workers stop between documents, and queued work of
the job does nothing. Cancelling a cancelled job succeeds and changes nothing; a COMPLETED or
FAILED job cannot be cancelled (exit code 1, FAILED_PRECONDITION). --output json prints the
CancelJobResponse.`,
		Example: `  pipeline jobs cancel 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01`,
		Args:    cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	runWithJob(cmd, settings, func(ctx context.Context, c *client, id string, out io.Writer) error {
		cctx, cancel := c.unary(ctx)
		defer cancel()
		resp, err := c.jobs.CancelJob(cctx, &pipelinev1.CancelJobRequest{JobId: id})
		if err != nil {
			return c.callError("cancel job "+id, err)
		}
		if settings.Output == "json" {
			return printProto(out, resp)
		}
		fmt.Fprintf(out, "job %s %s: %s\n", id, statusName(resp.GetJob().GetStatus()), jobProgress(resp.GetJob()))
		return nil
	})
	return cmd
}

func jobsRetryCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "retry JOB_ID",
		Short: "Start a new job that redoes what a finished job did not (failed or unprocessed documents)",
		Long: `retry starts a new job that redoes only what JOB_ID did not: for a processing job, the
documents that failed or were never processed. It is allowed for FAILED and CANCELLED jobs and
for COMPLETED jobs with failed documents; otherwise the server refuses (exit code 1,
FAILED_PRECONDITION). The new job records which job it retries. With --watch the new job is
followed to its end, as pipeline jobs watch does, and the exit code is its outcome.

--output json prints the RetryJobResponse, then with --watch one WatchJobResponse per line.`,
		Example: `  pipeline jobs retry 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 --watch`,
		Args:    cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the new job until it ends")
	runWithJob(cmd, settings, func(ctx context.Context, c *client, id string, out io.Writer) error {
		cctx, cancel := c.unary(ctx)
		resp, err := c.jobs.RetryJob(cctx, &pipelinev1.RetryJobRequest{JobId: id})
		cancel()
		if err != nil {
			return c.callError("retry job "+id, err)
		}
		job := resp.GetJob()
		if settings.Output == "json" {
			if err := printProto(out, resp); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(out, "job %s retries job %s: %s\n", job.GetJobId(), id, jobProgress(job))
		}
		if !watch {
			return nil
		}
		return c.watchToEnd(ctx, out, job)
	})
	return cmd
}

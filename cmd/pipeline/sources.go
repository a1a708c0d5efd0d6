package main

// `pipeline sources` manages sources: add a web source and watch its crawl and processing, list,
// show, refresh and delete them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
)

const (
	// sourcePollEvery is how often the source and its jobs are read while waiting for the
	// processing job to appear and for the source to settle (neither has a watch).
	sourcePollEvery = 250 * time.Millisecond
	// sourceSettleWait bounds the wait for the source to reach READY or FAILED after its jobs
	// ended, and for the processing job to appear after the crawl; both normally take a moment.
	sourceSettleWait = time.Minute
)

const sourcesWatchHelp = `Watching shows the crawl job (pages fetched, discovered and failed, pages per second), then
the processing job the server starts for new and changed pages (documents processed, errors,
documents per second), then waits until the source is READY or FAILED. On a terminal the jobs
get a progress bar; otherwise a line is printed when a job changes (at most one a second). With
--output json every watch event is one JSON object per line ({"job": {...}} for jobs,
{"source": {...}} when the source's status changes), and a final {"summary": {...}} object
holds the source, both jobs and the exit code.

Exit codes: 0 the source is READY and no document failed (or --wait=false and the call
succeeded), 3 it is READY but some documents failed, 4 it FAILED or its crawl or processing job
failed or was cancelled; the others as for every command (pipeline help exit-codes).`

const sourcesResolveHelp = `A source is named by its id or by its exact name; when several sources share the name, the
newest is meant.`

func sourcesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "Add, list, show, refresh and delete sources (web sites to crawl, upload sources)",
		Long: `sources manages the server's sources. A web source is a site the server crawls; its pages
become documents that are chunked, embedded and searchable once the source is READY.

` + sourcesResolveHelp,
	}
	cmd.AddCommand(sourcesAddCmd(), sourcesListCmd(), sourcesGetCmd(), sourcesRefreshCmd(), sourcesDeleteCmd())
	return cmd
}

// --- add

func sourcesAddCmd() *cobra.Command {
	var (
		name                    string
		limit, maxDepth         int
		include, exclude        []string
		subdomains, ignoreQuery bool
		wait                    bool
	)
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Add a web source, then watch its crawl and processing until it is READY",
		Long: `add creates a web source for URL (http or https) and starts its crawl on the server. The crawl
follows links on URL's host (and its subdomains with --allow-subdomains), obeys robots.txt and
saves each page as a document; the pages are then processed into searchable chunks.

` + sourcesWatchHelp,
		Example: `  pipeline sources add https://docs.example.com/ --name docs
  pipeline sources add http://127.0.0.1:8099/ --name sample-site --max-depth 2 --exclude '^/drafts/'
  pipeline sources add https://example.com/blog/ --include '^/blog/' --wait=false --output json`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	fs := cmd.Flags()
	fs.StringVar(&name, "name", "", "display name (default: the URL's host)")
	fs.IntVar(&limit, "limit", 0, "most pages to crawl, 1-100000 (default: the server's, 1000)")
	fs.IntVar(&maxDepth, "max-depth", 0, "deepest link distance from URL to follow, 0-100 (0: no limit)")
	fs.StringArrayVar(&include, "include", nil, "only save pages whose path matches this regular expression (repeatable)")
	fs.StringArrayVar(&exclude, "exclude", nil, "never crawl pages whose path matches this regular expression (repeatable)")
	fs.BoolVar(&subdomains, "allow-subdomains", false, "follow links to subdomains of URL's host")
	fs.BoolVar(&ignoreQuery, "ignore-query", false, "treat URLs that differ only in their query string as one page")
	fs.BoolVar(&wait, "wait", true, "watch the crawl and processing until the source is READY or FAILED")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req, err := createSourceRequest(args[0], name, limit, maxDepth, include, exclude, subdomains, ignoreQuery)
		if err != nil {
			return err
		}
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		cctx, cancel := c.unary(cmd.Context())
		resp, err := c.content.CreateSource(cctx, req)
		cancel()
		if err != nil {
			return c.callError("create source", err)
		}
		if resp.GetJob() == nil {
			return fmt.Errorf("create source: the server started no crawl for %s", req.GetUrl())
		}
		src := resp.GetSource()
		w := newSourceWatcher(c, cmd.OutOrStdout())
		w.say("created source %q (%s) for %s: crawl job %s", src.GetName(), src.GetSourceId(), src.GetUrl(), resp.GetJob().GetJobId())
		return w.run(cmd.Context(), src, resp.GetJob(), wait)
	}
	return cmd
}

// createSourceRequest checks the flags of `sources add` and builds its request. The server
// checks them too; checking here gives messages that name the flags.
func createSourceRequest(rawURL, name string, limit, maxDepth int, include, exclude []string, subdomains, ignoreQuery bool) (*pipelinev1.CreateSourceRequest, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, usageErrorf("URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("URL: want an http or https URL with a host, like https://example.com/, got %q", rawURL)
	}
	if n := utf8.RuneCountInString(name); n > 200 {
		return nil, usageErrorf("--name: at most 200 characters, got %d", n)
	}
	if limit < 0 || limit > 100000 {
		return nil, usageErrorf("--limit: want 1-100000 (or 0 for the server's default), got %d", limit)
	}
	if maxDepth < 0 || maxDepth > 100 {
		return nil, usageErrorf("--max-depth: want 0-100, got %d", maxDepth)
	}
	for _, p := range []struct {
		flag string
		res  []string
	}{{"--include", include}, {"--exclude", exclude}} {
		if len(p.res) > 100 {
			return nil, usageErrorf("%s: at most 100, got %d", p.flag, len(p.res))
		}
		for _, re := range p.res {
			if re == "" || len(re) > 500 {
				return nil, usageErrorf("%s: want a regular expression of 1-500 characters, got %q", p.flag, re)
			}
			if _, err := regexp.Compile(re); err != nil {
				return nil, usageErrorf("%s %q: %w", p.flag, re, err)
			}
		}
	}
	return &pipelinev1.CreateSourceRequest{
		Name: strings.TrimSpace(name),
		Url:  u.String(),
		CrawlOptions: &pipelinev1.CrawlOptions{
			Limit:                 int32(limit),
			MaxDepth:              int32(maxDepth),
			IncludePaths:          include,
			ExcludePaths:          exclude,
			AllowSubdomains:       subdomains,
			IgnoreQueryParameters: ignoreQuery,
		},
	}, nil
}

// --- refresh

func sourcesRefreshCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "refresh ID_OR_NAME",
		Short: "Crawl a web source again and watch it until it is READY; only changed pages are processed",
		Long: `refresh crawls a web source again. Pages whose content changed, and new pages, are processed;
pages that disappeared are removed. When a crawl of the source is already running, that crawl
is watched instead of starting another.

` + sourcesResolveHelp + `

` + sourcesWatchHelp,
		Example: `  pipeline sources refresh docs
  pipeline sources refresh 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 --wait=false`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", true, "watch the crawl and processing until the source is READY or FAILED")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		w := newSourceWatcher(c, cmd.OutOrStdout())
		src, err := w.resolve(ctx, args[0])
		if err != nil {
			return err
		}
		cctx, cancel := c.unary(ctx)
		resp, err := c.content.RefreshSource(cctx, &pipelinev1.RefreshSourceRequest{SourceId: src.GetSourceId()})
		cancel()
		if err != nil {
			return c.callError("refresh source "+src.GetSourceId(), err)
		}
		w.say("refreshing source %q (%s): crawl job %s", src.GetName(), src.GetSourceId(), resp.GetJob().GetJobId())
		return w.run(ctx, src, resp.GetJob(), wait)
	}
	return cmd
}

// --- list, get

func sourcesListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every source, newest first",
		Long: `list prints every source, newest first: id, name, status, document and chunk counts, how long
ago its last crawl finished ("-" if none has) and URL (empty for an upload source). --output json prints one ListSourcesResponse object holding all of them.`,
		Args: cobra.NoArgs,
	}
	settings := registerClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		all, err := c.listSources(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if settings.Output == "json" {
			return printProto(out, &pipelinev1.ListSourcesResponse{Sources: all})
		}
		if len(all) == 0 {
			fmt.Fprintln(out, "no sources")
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tDOCUMENTS\tCHUNKS\tLAST CRAWL\tURL")
		now := time.Now()
		for _, s := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.GetSourceId(), sourceOneLine(s.GetName()), sourceStatusName(s.GetStatus()),
				s.GetDocumentCount(), s.GetChunkCount(), lastCrawlAgo(s, now), s.GetUrl())
		}
		return tw.Flush()
	}
	return cmd
}

func sourcesGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID_OR_NAME",
		Short: "Show one source: status, error, document and chunk counts, last crawl, URL and crawl options",
		Long: `get shows one source, and in text form also its latest job. --output json prints the
GetSourceResponse.

` + sourcesResolveHelp,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		w := newSourceWatcher(c, cmd.OutOrStdout())
		src, err := w.resolve(ctx, args[0])
		if err != nil {
			return err
		}
		if settings.Output == "json" {
			return printProto(w.out, &pipelinev1.GetSourceResponse{Source: src})
		}
		cctx, cancel := c.unary(ctx)
		jobs, err := c.jobs.ListJobs(cctx, &pipelinev1.ListJobsRequest{SourceId: src.GetSourceId(), PageSize: 1})
		cancel()
		if err != nil {
			return c.callError("list jobs", err)
		}
		var latest *pipelinev1.Job
		if len(jobs.GetJobs()) > 0 {
			latest = jobs.GetJobs()[0]
		}
		printSourceDetails(w.out, src, latest)
		return nil
	}
	return cmd
}

// printSourceDetails writes one "key: value" line per property of src.
func printSourceDetails(out io.Writer, src *pipelinev1.Source, latest *pipelinev1.Job) {
	line, flush := detailLines(out)
	defer flush()
	line("id", "%s", src.GetSourceId())
	line("name", "%s", sourceOneLine(src.GetName()))
	line("status", "%s", sourceStatusName(src.GetStatus()))
	if e := src.GetError(); e != "" {
		line("error", "%s", sourceOneLine(e))
	}
	line("documents", "%d", src.GetDocumentCount())
	line("chunks", "%d", src.GetChunkCount())
	if id := src.GetLastCrawlJobId(); id != "" {
		line("last crawl", "%s (job %s)", src.GetLastCrawlTime().AsTime().Local().Format(time.DateTime), id)
	}
	if src.GetUrl() == "" {
		line("url", "(none: an upload source)")
	} else {
		line("url", "%s", src.GetUrl())
		o := src.GetCrawlOptions()
		opts := []string{"limit " + sourceOptNumber(int64(o.GetLimit()), "1000 (default)")}
		opts = append(opts, "max depth "+sourceOptNumber(int64(o.GetMaxDepth()), "none"))
		if len(o.GetIncludePaths()) > 0 {
			opts = append(opts, "include "+strings.Join(sourceQuoteAll(o.GetIncludePaths()), " "))
		}
		if len(o.GetExcludePaths()) > 0 {
			opts = append(opts, "exclude "+strings.Join(sourceQuoteAll(o.GetExcludePaths()), " "))
		}
		if o.GetAllowSubdomains() {
			opts = append(opts, "subdomains")
		}
		if o.GetIgnoreQueryParameters() {
			opts = append(opts, "ignoring query strings")
		}
		line("crawl", "%s", strings.Join(opts, ", "))
	}
	line("created", "%s", src.GetCreateTime().AsTime().Local().Format(time.DateTime))
	line("updated", "%s", src.GetUpdateTime().AsTime().Local().Format(time.DateTime))
	if latest != nil {
		line("latest job", "%s %s %s", strings.TrimPrefix(latest.GetType().String(), "JOB_TYPE_"), latest.GetJobId(), statusName(latest.GetStatus()))
	}
}

// lastCrawlAgo says how long ago the source's last crawl finished, "-" if none has.
func lastCrawlAgo(s *pipelinev1.Source, now time.Time) string {
	if s.GetLastCrawlJobId() == "" {
		return "-"
	}
	return roundDuration(now.Sub(s.GetLastCrawlTime().AsTime()).Truncate(time.Second)) + " ago"
}

func sourceOptNumber(n int64, zero string) string {
	if n == 0 {
		return zero
	}
	return fmt.Sprint(n)
}

func sourceQuoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// sourceOneLine keeps a name or message on its line in a table.
func sourceOneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// sourceStatusName is the source status without its enum prefix: PENDING, READY, ...
func sourceStatusName(s pipelinev1.SourceStatus) string {
	return strings.TrimPrefix(s.String(), "SOURCE_STATUS_")
}

// --- delete

func sourcesDeleteCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID_OR_NAME",
		Short: "Delete a source with its documents, jobs and vectors",
		Long: `delete cancels the source's active jobs and deletes the source with its documents, jobs and
stored vectors. It asks for confirmation on a terminal; --yes skips the question, and without a
terminal to ask on (a script, a pipe) --yes is required.

` + sourcesResolveHelp,
		Example: `  pipeline sources delete sample-site
  pipeline sources delete 0190f3c2-5d1e-7c4a-9f7e-2b8a4c6d8e01 --yes`,
		Args: cobra.ExactArgs(1),
	}
	settings := registerClientFlags(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in := cmd.InOrStdin()
		if !yes && !readerIsTerminal(in) {
			return usageErrorf("refusing to delete without --yes: there is no terminal to confirm on")
		}
		c, err := dial(settings)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		w := newSourceWatcher(c, cmd.OutOrStdout())
		src, err := w.resolve(ctx, args[0])
		if err != nil {
			return err
		}
		if !yes {
			question := fmt.Sprintf("delete source %q (%s) with its %s, jobs and vectors?",
				src.GetName(), src.GetSourceId(), plural(src.GetDocumentCount(), "document", "documents"))
			ok, err := confirmSourceDelete(in, cmd.ErrOrStderr(), question)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("not confirmed; nothing was deleted")
			}
		}
		cctx, cancel := c.unary(ctx)
		_, err = c.content.DeleteSource(cctx, &pipelinev1.DeleteSourceRequest{SourceId: src.GetSourceId()})
		cancel()
		if err != nil {
			return c.callError("delete source "+src.GetSourceId(), err)
		}
		if settings.Output == "json" {
			b, err := protoJSON.Marshal(src)
			if err != nil {
				return err
			}
			return sourceJSONLine(w.out, map[string]any{"deleted": true, "source": json.RawMessage(b)})
		}
		w.say("deleted source %q (%s)", src.GetName(), src.GetSourceId())
		return nil
	}
	return cmd
}

// readerIsTerminal reports whether r is a terminal (stdin of an interactive shell).
func readerIsTerminal(r io.Reader) bool {
	f, ok := r.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirmSourceDelete asks question on out and reads the answer from in: yes or y (any case)
// confirms, anything else (an empty line, end of input) does not.
func confirmSourceDelete(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func sourceJSONLine(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// --- resolving and watching

// sourceWatcher runs the watching part of add and refresh, and resolves source names.
type sourceWatcher struct {
	c      *client
	out    io.Writer
	text   bool
	retry  watchRetry
	poll   time.Duration // between reads of the source while waiting for it to settle
	settle time.Duration // the longest such wait

	lastStatus pipelinev1.SourceStatus // the last one seen, to print changes in JSON output
}

func newSourceWatcher(c *client, out io.Writer) *sourceWatcher {
	return &sourceWatcher{
		c: c, out: out, text: c.settings.Output == "text",
		retry: defaultWatchRetry, poll: sourcePollEvery, settle: sourceSettleWait,
	}
}

// say prints a line in text output; JSON output has only JSON objects.
func (w *sourceWatcher) say(format string, args ...any) {
	if w.text {
		fmt.Fprintf(w.out, format+"\n", args...)
	}
}

// resolve finds the source arg names: the source with that id, else the newest source with
// that exact name.
func (w *sourceWatcher) resolve(ctx context.Context, arg string) (*pipelinev1.Source, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return nil, usageErrorf("ID_OR_NAME: give a source's id or name")
	}
	if id, err := uuid.Parse(arg); err == nil {
		src, err := w.c.getSource(ctx, id.String())
		if err == nil {
			return src, nil
		}
		if status.Code(errors.Unwrap(err)) != codes.NotFound {
			return nil, err
		}
		// Not an id after all; a name may look like one.
	}
	all, err := w.c.listSources(ctx)
	if err != nil {
		return nil, err
	}
	named := sourcesNamed(all, arg)
	if len(named) == 0 {
		return nil, &exitCodeError{code: exitNotFound, err: fmt.Errorf("no source has the id or name %q (pipeline sources list shows them)", arg)}
	}
	if len(named) > 1 {
		w.say("%d sources are named %q; using the newest, %s", len(named), arg, named[0].GetSourceId())
	}
	return named[0], nil
}

// getSource reads one source. A NotFound status stays visible through errors.Unwrap.
func (c *client) getSource(ctx context.Context, id string) (*pipelinev1.Source, error) {
	cctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.content.GetSource(cctx, &pipelinev1.GetSourceRequest{SourceId: id})
	if err != nil {
		return nil, c.callError("get source "+id, err)
	}
	return resp.GetSource(), nil
}

// sourceOutcome is what watching a source ended with.
type sourceOutcome struct {
	source  *pipelinev1.Source
	crawl   *pipelinev1.Job
	process *pipelinev1.Job // nil when the crawl found nothing new or changed
}

// run watches the crawl, then the processing, then the source, unless wait is false, and ends
// the command: the text or JSON result and the error that carries the exit code.
func (w *sourceWatcher) run(ctx context.Context, src *pipelinev1.Source, crawl *pipelinev1.Job, wait bool) error {
	o := sourceOutcome{source: src, crawl: crawl}
	code := exitOK
	if wait {
		var err error
		if o, err = w.follow(ctx, src, crawl); err != nil {
			return err
		}
		code = sourceExitCode(o)
	} else {
		w.say("not waiting; the crawl goes on on the server (pipeline sources get %s shows how far it got)", src.GetSourceId())
	}
	if !w.text {
		if err := w.printSummary(o, wait, code); err != nil {
			return err
		}
	}
	if !wait {
		return nil
	}
	return w.outcome(o, code)
}

// follow watches the crawl job to its end, then the processing job it started, then waits for
// the source to be READY or FAILED.
func (w *sourceWatcher) follow(ctx context.Context, src *pipelinev1.Source, crawl *pipelinev1.Job) (sourceOutcome, error) {
	o := sourceOutcome{source: src, crawl: crawl}
	w.lastStatus = src.GetStatus()
	var p progress = &jsonProgress{w: w.out}
	if w.text {
		p = newCrawlProgress(w.out)
	}
	finals, err := w.c.watchJobs(ctx, []*pipelinev1.Job{crawl}, p, w.retry)
	if err != nil {
		return o, err
	}
	o.crawl = finals[0]

	crawlDone := o.crawl.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_COMPLETED
	if crawlDone {
		// The server starts processing right after the crawl completes; there is no watch for
		// that, so poll until the job is there or the source settled without one.
		o.process, o.source, err = w.findProcessJob(ctx, src.GetSourceId(), o.crawl)
		if err != nil {
			return o, err
		}
		if o.process == nil {
			w.say("no new or changed pages, so there is nothing to process")
		} else {
			w.say("processing %s: job %s", plural(o.process.GetProcessing().GetDocumentCount(), "new or changed page", "new or changed pages"),
				o.process.GetJobId())
			finals, err := w.c.watchJobs(ctx, []*pipelinev1.Job{o.process}, newProgress(w.out, w.c.settings.Output, []string{o.process.GetJobId()}), w.retry)
			if err != nil {
				return o, err
			}
			o.process = finals[0]
		}
	}

	// After a crawl that did not complete, the source may never move (a crawl cancelled before
	// it started leaves it as it was), so anything but CRAWLING is its final word.
	settled := func(s *pipelinev1.Source) bool {
		switch s.GetStatus() {
		case pipelinev1.SourceStatus_SOURCE_STATUS_READY, pipelinev1.SourceStatus_SOURCE_STATUS_FAILED:
			return true
		case pipelinev1.SourceStatus_SOURCE_STATUS_CRAWLING:
			return false
		}
		return !crawlDone
	}
	o.source, err = w.waitSource(ctx, src.GetSourceId(), settled)
	return o, err
}

// findProcessJob polls until the processing job started after crawl appears, or the source is
// READY or FAILED without one. It returns the job (nil when none) and the source.
func (w *sourceWatcher) findProcessJob(ctx context.Context, sourceID string, crawl *pipelinev1.Job) (*pipelinev1.Job, *pipelinev1.Source, error) {
	deadline := time.Now().Add(w.settle)
	for {
		// The source first: the job exists before the source can settle after processing, so
		// a settled source read before the list means the list shows every job there is.
		src, err := w.readSource(ctx, sourceID)
		if err != nil {
			return nil, nil, err
		}
		job, err := w.c.processJobAfter(ctx, sourceID, crawl)
		if err != nil {
			return nil, src, err
		}
		if job != nil {
			return job, src, nil
		}
		switch src.GetStatus() {
		case pipelinev1.SourceStatus_SOURCE_STATUS_READY, pipelinev1.SourceStatus_SOURCE_STATUS_FAILED:
			return nil, src, nil
		}
		if time.Now().After(deadline) {
			return nil, src, fmt.Errorf("the crawl job %s completed, but after %s the source is still %s and no processing job started",
				crawl.GetJobId(), w.settle, sourceStatusName(src.GetStatus()))
		}
		if err := sourceSleep(ctx, w.poll); err != nil {
			return nil, src, fmt.Errorf("interrupted while waiting for the processing job of source %s", sourceID)
		}
	}
}

// processJobAfter returns the first processing job of the source created after crawl, or nil.
func (c *client) processJobAfter(ctx context.Context, sourceID string, crawl *pipelinev1.Job) (*pipelinev1.Job, error) {
	cctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.jobs.ListJobs(cctx, &pipelinev1.ListJobsRequest{
		SourceId: sourceID, Type: pipelinev1.JobType_JOB_TYPE_PROCESS, PageSize: 50,
	})
	if err != nil {
		return nil, c.callError("list processing jobs", err)
	}
	after := crawl.GetCreateTime().AsTime()
	var found *pipelinev1.Job
	for _, j := range resp.GetJobs() { // newest first: the last match is the first job after
		if j.GetCreateTime().AsTime().After(after) {
			found = j
		}
	}
	return found, nil
}

// waitSource polls the source until done says it settled, for at most w.settle.
func (w *sourceWatcher) waitSource(ctx context.Context, sourceID string, done func(*pipelinev1.Source) bool) (*pipelinev1.Source, error) {
	deadline := time.Now().Add(w.settle)
	for {
		src, err := w.readSource(ctx, sourceID)
		if err != nil {
			return nil, err
		}
		if done(src) {
			return src, nil
		}
		if time.Now().After(deadline) {
			return src, fmt.Errorf("the jobs of source %s ended, but after %s the source is still %s", sourceID, w.settle, sourceStatusName(src.GetStatus()))
		}
		if err := sourceSleep(ctx, w.poll); err != nil {
			return src, fmt.Errorf("interrupted while waiting for source %s to be READY; it goes on on the server", sourceID)
		}
	}
}

// readSource reads the source while watching it, printing it in JSON output when its status
// changed. A source deleted meanwhile ends the watch with exit code 4.
func (w *sourceWatcher) readSource(ctx context.Context, id string) (*pipelinev1.Source, error) {
	src, err := w.c.getSource(ctx, id)
	if status.Code(errors.Unwrap(err)) == codes.NotFound {
		return nil, &exitCodeError{code: exitJobsNotDone, err: fmt.Errorf("source %s was deleted while it was watched", id)}
	}
	if err != nil {
		return nil, err
	}
	changed := src.GetStatus() != w.lastStatus
	w.lastStatus = src.GetStatus()
	if changed && !w.text {
		if err := printProto(w.out, &pipelinev1.GetSourceResponse{Source: src}); err != nil {
			return nil, err
		}
	}
	return src, nil
}

func sourceSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sourceExitCode maps how the watch ended to the exit code: 4 when a job failed or was
// cancelled or the source FAILED, 3 when the source is READY but documents failed (or it
// reports an error), 0 when it is READY and clean.
func sourceExitCode(o sourceOutcome) int {
	jobs := []*pipelinev1.Job{o.crawl}
	if o.process != nil {
		jobs = append(jobs, o.process)
	}
	code := jobsExitCode(jobs)
	switch {
	case code == exitJobsNotDone, o.source.GetStatus() == pipelinev1.SourceStatus_SOURCE_STATUS_FAILED:
		return exitJobsNotDone
	case o.source.GetStatus() != pipelinev1.SourceStatus_SOURCE_STATUS_READY:
		return exitError
	case code == exitDocErrors, o.source.GetError() != "":
		return exitDocErrors
	}
	return code
}

// outcome prints the final line in text output and returns the error that carries code.
func (w *sourceWatcher) outcome(o sourceOutcome, code int) error {
	src := o.source
	head := fmt.Sprintf("source %q (%s) %s", src.GetName(), src.GetSourceId(), sourceStatusName(src.GetStatus()))
	switch code {
	case exitOK:
		w.say("%s: %s", head, plural(src.GetDocumentCount(), "document", "documents"))
		return nil
	case exitDocErrors:
		why := src.GetError()
		if p := o.process.GetProcessing(); why == "" && p.GetErrorCount() > 0 {
			why = fmt.Sprintf("%d of %d documents failed", p.GetErrorCount(), p.GetDocumentCount())
		}
		w.say("%s: %s, but %s", head, plural(src.GetDocumentCount(), "document", "documents"), why)
		msg := head + ", but " + why
		if o.process != nil {
			msg += fmt.Sprintf("; the per-document results of job %s say which (GET /v1/jobs/%s/documents)", o.process.GetJobId(), o.process.GetJobId())
		}
		return &exitCodeError{code: code, err: errors.New(msg)}
	}
	var why []string
	for _, j := range []*pipelinev1.Job{o.crawl, o.process} {
		if s := j.GetStatus(); s == pipelinev1.JobStatus_JOB_STATUS_FAILED || s == pipelinev1.JobStatus_JOB_STATUS_CANCELLED {
			m := fmt.Sprintf("%s job %s %s", sourceJobKind(j), j.GetJobId(), statusName(s))
			if e := j.GetError(); e != "" && e != src.GetError() { // the source's line says it otherwise
				m += ": " + e
			}
			why = append(why, m)
		}
	}
	if e := src.GetError(); e != "" {
		why = append(why, head+": "+e)
	} else {
		why = append(why, head)
	}
	w.say("%s", why[len(why)-1])
	return &exitCodeError{code: code, err: errors.New(strings.Join(why, "; "))}
}

func sourceJobKind(j *pipelinev1.Job) string {
	if j.GetType() == pipelinev1.JobType_JOB_TYPE_CRAWL {
		return "crawl"
	}
	return "processing"
}

// sourceSummary is the last JSON object add and refresh print, under the key "summary".
type sourceSummary struct {
	Source     json.RawMessage `json:"source"`
	CrawlJob   json.RawMessage `json:"crawl_job"`
	ProcessJob json.RawMessage `json:"process_job,omitempty"` // absent when nothing was processed
	Waited     bool            `json:"waited"`
	ExitCode   int             `json:"exit_code"`
}

func (w *sourceWatcher) printSummary(o sourceOutcome, waited bool, code int) error {
	sum := sourceSummary{Waited: waited, ExitCode: code}
	for _, f := range []struct {
		dst *json.RawMessage
		m   proto.Message
	}{{&sum.Source, o.source}, {&sum.CrawlJob, o.crawl}, {&sum.ProcessJob, o.process}} {
		if f.m == nil || !f.m.ProtoReflect().IsValid() {
			continue
		}
		b, err := protoJSON.Marshal(f.m)
		if err != nil {
			return err
		}
		*f.dst = b
	}
	return sourceJSONLine(w.out, map[string]any{"summary": sum})
}

// --- crawl progress

// crawlProgress shows one crawl job in text output: a redrawn bar on a terminal, else a line
// when the counters change (at most one a second) and always the final line. JSON output uses
// jsonProgress, as for processing jobs.
type crawlProgress struct {
	w     io.Writer
	now   func() time.Time
	tty   bool
	width int
	every time.Duration

	mu       sync.Mutex
	job      *pipelinev1.Job
	baseSet  bool // the rate counts from the first snapshot seen IN_PROGRESS
	baseAt   time.Time
	baseDone int64
	shown    string // the last line or bar written
	shownKey string
	shownAt  time.Time
	final    bool
}

func newCrawlProgress(w io.Writer) *crawlProgress {
	p := &crawlProgress{w: w, now: time.Now, every: lineEvery}
	if fd, ok := terminalFd(w); ok {
		p.tty = true
		if width, _, err := term.GetSize(fd); err == nil {
			p.width = width
		}
	}
	return p
}

func (p *crawlProgress) Update(job *pipelinev1.Job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.final || (p.job != nil && job.GetVersion() <= p.job.GetVersion()) {
		return
	}
	now := p.now()
	p.job = job
	if !p.baseSet && job.GetStatus() == pipelinev1.JobStatus_JOB_STATUS_IN_PROGRESS {
		p.baseSet, p.baseAt, p.baseDone = true, now, job.GetCrawl().GetPagesFetched()
	}
	p.show(now, false)
}

func (p *crawlProgress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.show(p.now(), false)
}

func (p *crawlProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.show(p.now(), true)
	if p.tty && p.shown != "" && !p.final {
		fmt.Fprintln(p.w) // leave an interrupted bar on its line
	}
	p.final = true
}

func (p *crawlProgress) show(now time.Time, force bool) {
	if p.job == nil || p.final {
		return
	}
	if jobTerminal(p.job) {
		p.final = true
		prefix := ""
		if p.tty && p.shown != "" {
			prefix = "\r\x1b[2K"
		}
		fmt.Fprintf(p.w, "%s%s\n", prefix, crawlFinalLine(p.job))
		return
	}
	rate, rateOK := p.rate(now)
	if p.tty {
		c := p.job.GetCrawl()
		tail := statusName(p.job.GetStatus())
		if rateOK {
			tail = fmt.Sprintf("%.1f pages/s", rate)
		}
		row := barRow("crawl", c.GetPagesFetched(), c.GetPagesFailed(), c.GetPagesDiscovered(), tail)
		if p.width > 1 && len(row) >= p.width {
			row = row[:p.width-1]
		}
		if row != p.shown {
			fmt.Fprintf(p.w, "\r\x1b[2K%s", row)
			p.shown = row
		}
		return
	}
	c := p.job.GetCrawl()
	key := fmt.Sprintf("%s %d %d %d", p.job.GetStatus(), c.GetPagesDiscovered(), c.GetPagesFetched(), c.GetPagesFailed())
	if key == p.shownKey || (!force && p.shownKey != "" && now.Sub(p.shownAt) < p.every) {
		return
	}
	line := fmt.Sprintf("crawl job %s %s: %s of %d discovered, %d failed", p.job.GetJobId(), statusName(p.job.GetStatus()),
		plural(c.GetPagesFetched(), "page fetched", "pages fetched"), c.GetPagesDiscovered(), c.GetPagesFailed())
	if rateOK {
		line += fmt.Sprintf(", %.1f pages/s", rate)
	}
	fmt.Fprintln(p.w, line)
	p.shown, p.shownKey, p.shownAt = line, key, now
}

// rate is pages fetched per second since the crawl started, once it has run a second.
func (p *crawlProgress) rate(now time.Time) (float64, bool) {
	if !p.baseSet {
		return 0, false
	}
	elapsed := now.Sub(p.baseAt).Seconds()
	n := p.job.GetCrawl().GetPagesFetched() - p.baseDone
	if elapsed < 1 || n <= 0 {
		return 0, false
	}
	return float64(n) / elapsed, true
}

// crawlFinalLine describes a crawl job in a terminal status.
func crawlFinalLine(j *pipelinev1.Job) string {
	c := j.GetCrawl()
	s := fmt.Sprintf("crawl job %s %s: %s of %d discovered, %d failed", j.GetJobId(), statusName(j.GetStatus()),
		plural(c.GetPagesFetched(), "page fetched", "pages fetched"), c.GetPagesDiscovered(), c.GetPagesFailed())
	if j.GetStartTime() != nil && j.GetFinishTime() != nil {
		s += ", in " + roundDuration(j.GetFinishTime().AsTime().Sub(j.GetStartTime().AsTime()))
	}
	if e := j.GetError(); e != "" {
		s += ": " + e
	}
	return s
}

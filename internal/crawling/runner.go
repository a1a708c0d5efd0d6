// Package crawling runs crawl jobs in the server: it drives a crawler, saves the pages as
// documents (keyed by final URL, with content hashes), keeps the job's page counters and the
// source's status true, removes pages that disappeared, and hands new and changed documents to
// processing. It knows jobs, content, the vector store and the crawler interface, not gRPC.
package crawling

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// Runner runs crawl jobs, one goroutine each.
type Runner struct {
	Jobs    *jobs.Manager
	Content *content.PgStore
	Vectors vector.Store
	// Builtin is the crawler built into the server.
	Builtin crawl.Crawler
	// Firecrawl, when set, runs the crawls of sources whose crawler is Firecrawl.
	Firecrawl *Firecrawl
	// ProgressEvery is the least time between two progress writes; a running crawl also writes
	// at least every Heartbeat so the reconciler can tell it is alive. Defaults to 500ms and 10s.
	ProgressEvery, Heartbeat time.Duration
	// SaveBatch is how many pages are saved per transaction. Defaults to 50.
	SaveBatch int
	Log       *slog.Logger

	// collecting holds the ids of Firecrawl crawl jobs whose pages are being read.
	collecting sync.Map

	mu      sync.Mutex
	base    context.Context
	stopAll context.CancelFunc
	wg      sync.WaitGroup
}

// Run makes the runner accept crawls until ctx ends, then waits for running crawls to stop.
// Crawls stopped by shutdown fail with a message saying to refresh the source.
func (r *Runner) Run(ctx context.Context) {
	base, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.base, r.stopAll = base, cancel
	r.mu.Unlock()
	<-ctx.Done()
	cancel()
	r.wg.Wait()
}

// Start runs the crawl job of the source in the background.
func (r *Runner) Start(src *content.Source, job *jobs.Job) error {
	r.mu.Lock()
	base := r.base
	r.mu.Unlock()
	if base == nil || base.Err() != nil {
		return fmt.Errorf("%w: the crawler is not running (server starting or stopping)", errs.ErrUnavailable)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.run(base, src, job)
	}()
	return nil
}

// run is one crawl job from start to end.
func (r *Runner) run(ctx context.Context, src *content.Source, job *jobs.Job) {
	log := cmp.Or(r.Log, slog.Default()).With("job_id", job.ID, "source_id", src.ID, "url", src.URL)
	job, err := r.Jobs.Start(ctx, job.ID)
	if err != nil {
		log.WarnContext(ctx, "crawl not started", "err", err)
		return
	}
	r.setSource(ctx, src.ID, content.SourceStatusCrawling, "", log)
	if src.Crawler == content.CrawlerFirecrawl {
		r.startFirecrawl(ctx, src, job, log)
		return
	}
	c := &crawlRun{r: r, job: job, src: src, log: log, seen: map[string]bool{}, lastWrite: time.Now()}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c.stop = stop
	go c.heartbeat(ctx)

	opts := crawlOptions(src)
	progress, crawlErr := r.Builtin.Crawl(ctx, src.URL, opts, c.onPage, c.onProgress)
	if crawlErr == nil {
		crawlErr = c.flush(ctx)
	}
	c.setProgress(progress)
	bg := context.WithoutCancel(ctx)
	if crawlErr != nil {
		cause := context.Cause(ctx)
		switch {
		case errors.Is(cause, errJobEnded):
			log.InfoContext(bg, "crawl stopped: its job ended", "reason", cause)
			r.settleEnded(bg, job.ID, src.ID, log)
		case ctx.Err() != nil && cause == context.Canceled:
			r.fail(bg, job, src, "the server stopped during the crawl; refresh the source to crawl again", log)
		default:
			r.fail(bg, job, src, "crawl failed: "+crawlErr.Error(), log)
		}
		return
	}
	if err := c.finish(bg, progress, opts.Limit); err != nil {
		r.fail(bg, job, src, err.Error(), log)
	}
}

var errJobEnded = errors.New("the crawl job ended (cancelled, failed or timed out)")

// settleEnded gives the source the status its ended crawl job implies: FAILED with the job's
// error, or READY noting the cancellation (its earlier documents stay searchable).
func (r *Runner) settleEnded(ctx context.Context, jobID uuid.UUID, sourceID string, log *slog.Logger) {
	job, err := r.Jobs.Get(ctx, jobID)
	if err != nil {
		return // deleted with its source
	}
	switch job.Status {
	case jobs.StatusFailed:
		r.setSource(ctx, sourceID, content.SourceStatusFailed, job.Error, log)
	case jobs.StatusCancelled:
		r.setSource(ctx, sourceID, content.SourceStatusReady, "the last crawl was cancelled", log)
	}
}

// ReapStale fails built-in crawl jobs that have written nothing since before: the server that
// ran them went away (a running crawl writes its progress at least every Heartbeat). Their
// sources become FAILED, saying to refresh. Quiet Firecrawl crawls are polled instead, and
// collected or failed from their real state (their events may have gone missing).
func (r *Runner) ReapStale(ctx context.Context, before time.Time) (int, error) {
	stale, err := r.Jobs.StaleCrawls(ctx, before, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	log := cmp.Or(r.Log, slog.Default())
	for _, j := range stale {
		if j.ExternalID != "" {
			// Run by Firecrawl: its events may have gone missing; ask it how the crawl is.
			if r.Firecrawl != nil {
				if err := r.pollFirecrawl(ctx, j); err != nil {
					return n, err
				}
			}
			continue
		}
		const reason = "the crawl stopped making progress (the server running it went away); refresh the source to crawl again"
		if _, err := r.Jobs.Fail(ctx, j.ID, reason); err != nil {
			if errs.IsFailedPrecondition(err) {
				continue
			}
			return n, err
		}
		r.setSource(ctx, j.SourceID.String(), content.SourceStatusFailed, reason, log)
		n++
	}
	return n, nil
}

// fail ends the crawl job and the source with the reason, unless the job already ended.
func (r *Runner) fail(ctx context.Context, job *jobs.Job, src *content.Source, reason string, log *slog.Logger) {
	log.WarnContext(ctx, "crawl failed", "reason", reason)
	if _, err := r.Jobs.Fail(ctx, job.ID, reason); err != nil && !errs.IsFailedPrecondition(err) {
		log.WarnContext(ctx, "fail crawl job", "err", err)
		return
	}
	r.setSource(ctx, src.ID, content.SourceStatusFailed, reason, log)
}

func (r *Runner) setSource(ctx context.Context, id string, st content.SourceStatus, msg string, log *slog.Logger) {
	_, err := r.Content.UpdateSourceStatus(ctx, &content.UpdateSourceStatusParams{ID: id, Status: st, Error: msg})
	if err != nil && !errs.IsFailedPrecondition(err) && !errors.Is(err, errs.ErrNotFound) {
		log.WarnContext(ctx, "update source status", "status", st, "err", err)
	}
}

// crawlRun is the state of one running crawl.
type crawlRun struct {
	r    *Runner
	job  *jobs.Job
	src  *content.Source
	log  *slog.Logger
	stop context.CancelCauseFunc

	mu        sync.Mutex
	progress  crawl.Progress
	lastWrite time.Time
	pending   []content.DocumentInput
	seen      map[string]bool // URIs saved by this crawl
	changed   []uuid.UUID
}

func (c *crawlRun) onPage(p crawl.Page) error {
	c.mu.Lock()
	c.pending = append(c.pending, content.DocumentInput{
		URI: p.URL, Title: p.Title, ContentType: content.ContentTypeMarkdown, Content: p.Markdown,
		Metadata: map[string]string{"depth": fmt.Sprint(p.Depth)},
	})
	full := len(c.pending) >= cmp.Or(c.r.SaveBatch, 50)
	c.mu.Unlock()
	if full {
		return c.flush(context.Background())
	}
	return nil
}

// flush saves the pending pages in one transaction.
func (c *crawlRun) flush(ctx context.Context) error {
	c.mu.Lock()
	docs := c.pending
	c.pending = nil
	c.mu.Unlock()
	if len(docs) == 0 {
		return nil
	}
	// A URL seen twice in one batch (two links redirecting to one page) is saved once.
	uniq := docs[:0]
	inBatch := map[string]bool{}
	for _, d := range docs {
		if !inBatch[d.URI] {
			inBatch[d.URI] = true
			uniq = append(uniq, d)
		}
	}
	saved, err := c.r.Content.UpsertDocuments(ctx, &content.UpsertDocumentsParams{SourceID: c.src.ID, Documents: uniq})
	if err != nil {
		return fmt.Errorf("save pages: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range saved {
		c.seen[u.Document.URI] = true
		if u.Changed {
			c.changed = append(c.changed, uuid.MustParse(u.Document.ID))
		}
	}
	return nil
}

func (c *crawlRun) onProgress(p crawl.Progress) {
	c.mu.Lock()
	c.progress = p
	due := time.Since(c.lastWrite) >= cmp.Or(c.r.ProgressEvery, 500*time.Millisecond)
	c.mu.Unlock()
	if due {
		c.setProgress(p)
	}
}

// setProgress writes the counters; a job that ended (cancelled, timed out) stops the crawl.
func (c *crawlRun) setProgress(p crawl.Progress) {
	c.mu.Lock()
	c.lastWrite = time.Now()
	c.mu.Unlock()
	_, err := c.r.Jobs.UpdateCrawlProgress(context.Background(), c.job.ID, jobs.CrawlProgress{
		Discovered: int64(p.Discovered), Fetched: int64(p.Fetched), Failed: int64(p.Failed),
	}, "")
	if errs.IsFailedPrecondition(err) || errors.Is(err, errs.ErrNotFound) {
		c.stop(errJobEnded)
	} else if err != nil {
		c.log.Warn("write crawl progress", "err", err)
	}
}

// heartbeat writes the progress at least every Heartbeat, so a live crawl never looks stale.
func (c *crawlRun) heartbeat(ctx context.Context) {
	every := cmp.Or(c.r.Heartbeat, 10*time.Second)
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.mu.Lock()
			idle, p := time.Since(c.lastWrite) >= every/2, c.progress
			c.mu.Unlock()
			if idle {
				c.setProgress(p)
			}
		}
	}
}

// finish removes documents of pages that disappeared (when the crawl saw the whole site),
// completes the crawl job and starts processing the new and changed documents.
func (c *crawlRun) finish(ctx context.Context, p crawl.Progress, limit int) error {
	r := c.r
	if p.Fetched < limit {
		if err := c.removeDisappeared(ctx); err != nil {
			return err
		}
	}
	job, err := r.Jobs.Complete(ctx, c.job.ID)
	if err != nil {
		if errs.IsFailedPrecondition(err) {
			return nil // cancelled at the last moment
		}
		return fmt.Errorf("complete crawl job: %w", err)
	}
	c.log.InfoContext(ctx, "crawl completed", "fetched", p.Fetched, "failed", p.Failed, "changed", len(c.changed))
	if len(c.changed) == 0 {
		r.setSource(ctx, c.src.ID, content.SourceStatusReady, "", c.log)
		return nil
	}
	srcID := uuid.MustParse(c.src.ID)
	// Creating the job moves the source to PROCESSING (processing.Hooks, before the job is
	// queued); setting it again here could undo a worker that had already finished the job.
	if _, err := r.Jobs.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: srcID, DocumentIDs: c.changed}); err != nil {
		return fmt.Errorf("start processing after crawl %s: %w", job.ID, err)
	}
	return nil
}

// removeDisappeared deletes the source's documents whose page this crawl did not save, with
// their vectors. It runs only after a crawl that was not cut short by its page limit, so "not
// saved" means the page is gone, no longer linked, or now excluded.
func (c *crawlRun) removeDisappeared(ctx context.Context) error {
	var gone []string
	token := ""
	for {
		list, next, err := c.r.Content.ListDocuments(ctx, &content.ListDocumentsParams{SourceID: c.src.ID, PageSize: 1000, PageToken: token})
		if err != nil {
			return fmt.Errorf("list documents: %w", err)
		}
		for _, d := range list {
			if !c.seen[d.URI] {
				gone = append(gone, d.ID)
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if len(gone) == 0 {
		return nil
	}
	if err := c.r.Content.DeleteDocuments(ctx, c.src.ID, gone); err != nil {
		return fmt.Errorf("delete disappeared pages: %w", err)
	}
	for _, id := range gone {
		if err := c.r.Vectors.DeleteDocument(ctx, id, 0); err != nil {
			// The rows are gone; a chunk left behind would only be found by a search filtered to
			// this source. Log it; the next refresh or the source's deletion removes it.
			c.log.WarnContext(ctx, "delete vectors of a disappeared page", "document_id", id, "err", err)
		}
	}
	c.log.InfoContext(ctx, "removed pages that disappeared", "count", len(gone))
	return nil
}

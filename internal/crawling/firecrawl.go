package crawling

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/crawl"
	"github.com/pipeline-dev/pipeline/internal/crawl/firecrawl"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// Firecrawl is the runner's connection to a Firecrawl service: crawls started there report
// back through a signed webhook, and the reconciler polls those that went quiet.
type Firecrawl struct {
	Client *firecrawl.Client
	// WebhookURL is where Firecrawl reaches this server: <public URL>/v1/webhooks/firecrawl.
	WebhookURL string
	// Secret verifies webhook signatures (X-Firecrawl-Signature).
	Secret []byte
}

// startFirecrawl asks Firecrawl to crawl the source; the rest happens when events arrive.
func (r *Runner) startFirecrawl(ctx context.Context, src *content.Source, job *jobs.Job, log *slog.Logger) {
	id, err := r.Firecrawl.Client.StartCrawl(ctx, firecrawl.StartRequest{
		URL:     src.URL,
		Options: crawlOptions(src),
		Webhook: &firecrawl.Webhook{
			URL:      r.Firecrawl.WebhookURL,
			Metadata: map[string]any{"job_id": job.ID.String(), "source_id": src.ID},
			Events:   []string{"started", "page", "completed", "failed"},
		},
	})
	if err != nil {
		r.fail(ctx, job, src, "firecrawl refused the crawl: "+err.Error(), log)
		return
	}
	if _, err := r.Jobs.UpdateCrawlProgress(ctx, job.ID, jobs.CrawlProgress{}, id); err != nil {
		log.WarnContext(ctx, "record firecrawl crawl id", "crawl_id", id, "err", err)
		_ = r.Firecrawl.Client.Cancel(context.WithoutCancel(ctx), id)
		return
	}
	log.InfoContext(ctx, "firecrawl crawl started", "crawl_id", id)
}

// WebhookError says how a webhook delivery was refused.
type WebhookError struct {
	Status int // HTTP status to answer
	Err    error
}

func (e *WebhookError) Error() string { return e.Err.Error() }
func (e *WebhookError) Unwrap() error { return e.Err }

// HandleWebhook verifies, deduplicates and applies one Firecrawl delivery. A bad or missing
// signature is refused (401) and changes nothing; a repeated delivery changes nothing.
func (r *Runner) HandleWebhook(ctx context.Context, body []byte, signature string) error {
	if r.Firecrawl == nil || len(r.Firecrawl.Secret) == 0 {
		return &WebhookError{Status: 503, Err: errors.New("Firecrawl webhooks are not configured (PIPELINE_FIRECRAWL_WEBHOOK_SECRET)")}
	}
	if err := firecrawl.VerifySignature(r.Firecrawl.Secret, body, signature); err != nil {
		return &WebhookError{Status: 401, Err: err}
	}
	ev, err := firecrawl.ParseEvent(body)
	if err != nil {
		return &WebhookError{Status: 400, Err: err}
	}
	delivery := ev.DeliveryID
	if delivery == "" {
		sum := sha256.Sum256(body) // no id from the sender: the same body is the same delivery
		delivery = "sha256:" + hex.EncodeToString(sum[:])
	}
	fresh, err := r.Content.RecordDelivery(ctx, delivery)
	if err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	if err := r.applyEvent(ctx, ev); err != nil {
		// Not applied: forget the delivery so the sender's retry is.
		if ferr := r.Content.ForgetDelivery(context.WithoutCancel(ctx), delivery); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	return nil
}

// applyEvent applies one verified, new Firecrawl event.
func (r *Runner) applyEvent(ctx context.Context, ev *firecrawl.Event) error {
	job, err := r.Jobs.GetByExternalID(ctx, ev.CrawlID)
	if errors.Is(err, errs.ErrNotFound) {
		return nil // a crawl we no longer know (source deleted): nothing to do
	}
	if err != nil {
		return err
	}
	if job.Status.Terminal() {
		return nil // cancelled or timed out: late events change nothing
	}
	log := cmp.Or(r.Log, slog.Default()).With("job_id", job.ID, "source_id", job.SourceID, "crawl_id", ev.CrawlID)
	switch ev.Type {
	case "crawl.page":
		if _, collecting := r.collecting.Load(job.ID); collecting {
			return nil // the collector's counts are the final ones
		}
		p := job.Crawl
		p.Fetched += int64(len(ev.Pages))
		p.Discovered = max(p.Discovered, p.Fetched)
		_, err := r.Jobs.UpdateCrawlProgress(ctx, job.ID, p, "")
		if err != nil && !errs.IsFailedPrecondition(err) {
			return err
		}
	case "crawl.completed":
		return r.collectFirecrawl(job, log)
	case "crawl.cancelled":
		// Cancelled at Firecrawl (by someone else): the job ends the same way.
		if _, err := r.Jobs.Cancel(ctx, job.ID); err != nil && !errs.IsFailedPrecondition(err) {
			return err
		}
		r.settleEnded(ctx, job.ID, job.SourceID.String(), log)
	case "crawl.failed":
		src, err := r.Content.GetSource(ctx, &content.GetSourceParams{ID: job.SourceID.String()})
		if err != nil {
			return nil
		}
		r.fail(ctx, job, src, "firecrawl: crawl failed: "+cmp.Or(ev.Error, "no reason given"), log)
	}
	return nil
}

// collectFirecrawl reads every page of a finished Firecrawl crawl in the background and
// finishes the job like a built-in crawl.
func (r *Runner) collectFirecrawl(job *jobs.Job, log *slog.Logger) error {
	r.mu.Lock()
	base := r.base
	r.mu.Unlock()
	if base == nil || base.Err() != nil {
		return fmt.Errorf("%w: the crawl runner is not running", errs.ErrUnavailable)
	}
	// One collector per crawl: a completed event and a poll may both ask for it.
	if _, already := r.collecting.LoadOrStore(job.ID, true); already {
		return nil
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx := base
		src, err := r.Content.GetSource(ctx, &content.GetSourceParams{ID: job.SourceID.String()})
		if err != nil {
			return
		}
		c := &crawlRun{r: r, job: job, src: src, log: log, seen: map[string]bool{}, stop: func(error) {}}
		var pages int
		status, err := r.Firecrawl.Client.AllPages(ctx, job.ExternalID, func(p firecrawl.Page) error {
			if p.Markdown == "" || p.URL == "" {
				return nil // a page Firecrawl could not read
			}
			pages++
			return c.onPage(crawl.Page{URL: p.URL, Title: p.Title, Markdown: p.Markdown})
		})
		if err == nil {
			err = c.flush(ctx)
		}
		bg := context.WithoutCancel(ctx)
		if err != nil {
			if transient, _ := errs.IsTransient(err); transient {
				// Firecrawl is briefly away: leave the job running; the reconciler polls again.
				log.WarnContext(bg, "read firecrawl pages; will retry", "err", err)
				r.collecting.Delete(job.ID)
				return
			}
			r.fail(bg, job, src, "firecrawl: reading the crawl's pages: "+err.Error(), log)
			return
		}
		failed := max(status.Total-pages, 0)
		if report, err := r.Firecrawl.Client.Errors(ctx, job.ExternalID); err == nil {
			failed = max(failed, len(report.Errors))
		}
		progress := crawl.Progress{Discovered: max(status.Total, pages+failed), Fetched: pages, Failed: failed}
		c.setProgress(progress)
		if err := c.finish(bg, progress, crawlOptions(src).Limit); err != nil {
			r.fail(bg, job, src, err.Error(), log)
		}
	}()
	return nil
}

// pollFirecrawl checks a quiet Firecrawl crawl's real state: a finished one is collected or
// failed (its events went missing), a running one has its progress refreshed.
func (r *Runner) pollFirecrawl(ctx context.Context, job *jobs.Job) error {
	log := cmp.Or(r.Log, slog.Default()).With("job_id", job.ID, "crawl_id", job.ExternalID)
	st, err := r.Firecrawl.Client.GetCrawl(ctx, job.ExternalID)
	if err != nil {
		if transient, _ := errs.IsTransient(err); transient {
			return nil
		}
		src, gerr := r.Content.GetSource(ctx, &content.GetSourceParams{ID: job.SourceID.String()})
		if gerr == nil {
			r.fail(ctx, job, src, "firecrawl: "+err.Error(), log)
		}
		return nil
	}
	switch st.Status {
	case "completed":
		log.InfoContext(ctx, "firecrawl crawl finished without a completed event reaching us; collecting it")
		return r.collectFirecrawl(job, log)
	case "failed", "cancelled":
		src, gerr := r.Content.GetSource(ctx, &content.GetSourceParams{ID: job.SourceID.String()})
		if gerr == nil {
			r.fail(ctx, job, src, "firecrawl: crawl "+st.Status+": "+cmp.Or(st.Error, "no reason given"), log)
		}
		return nil
	default:
		_, err := r.Jobs.UpdateCrawlProgress(ctx, job.ID, jobs.CrawlProgress{
			Discovered: int64(st.Total), Fetched: int64(st.Completed), Failed: job.Crawl.Failed,
		}, "")
		if err != nil && !errs.IsFailedPrecondition(err) {
			return err
		}
		return nil
	}
}

// CancelExternal stops the external crawl of a cancelled crawl job (best effort), in the
// background: the CancelJob call that triggered it must not wait on Firecrawl.
func (r *Runner) CancelExternal(ctx context.Context, job *jobs.Job) {
	if r.Firecrawl == nil || job.ExternalID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.Firecrawl.Client.Cancel(ctx, job.ExternalID); err != nil {
			cmp.Or(r.Log, slog.Default()).WarnContext(ctx, "cancel firecrawl crawl", "crawl_id", job.ExternalID, "err", err)
		}
	}()
}

func crawlOptions(src *content.Source) crawl.Options {
	o := src.CrawlOptions
	return crawl.Options{
		Limit: o.Limit, MaxDepth: o.MaxDepth, IncludePaths: o.IncludePaths, ExcludePaths: o.ExcludePaths,
		AllowSubdomains: o.AllowSubdomains, IgnoreQueryParameters: o.IgnoreQueryParameters,
	}.WithDefaults()
}

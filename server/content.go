package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// contentService implements pipelinev1.ContentService over the content store and job manager.
type contentService struct {
	pipelinev1.UnimplementedContentServiceServer
	s       *Server
	backlog backlogGate
}

// backlogFresh is how long a backlog count stands in for a new one while uploads stay well
// under the limit.
const backlogFresh = time.Second

// backlogGate is IngestDocuments's backpressure without a count of the backlog on every call
// (a join over every active batch, on the path of every upload): a count stands for
// backlogFresh, raised by the batches of each upload accepted since, while it stays below the
// limit; near the limit, or once stale, the backlog is counted again, and only a fresh count
// refuses. The zero value is ready.
type backlogGate struct {
	mu    sync.Mutex
	count int
	at    time.Time
}

// admit refuses with ResourceExhausted when the backlog is at limit, and otherwise counts the
// batches the upload is about to add.
func (g *backlogGate) admit(ctx context.Context, count func(context.Context) (int, error), limit, batches int) error {
	g.mu.Lock()
	if !g.at.IsZero() && time.Since(g.at) < backlogFresh && g.count+batches < limit {
		g.count += batches
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	n, err := count(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.count, g.at = n, time.Now()
	if n < limit {
		g.count += batches
	}
	g.mu.Unlock()
	if n >= limit {
		return fmt.Errorf("%w: %d batches are waiting to be processed (limit %d, PIPELINE_MAX_BACKLOG_BATCHES); retry later",
			errs.ErrResourceExhausted, n, limit)
	}
	return nil
}

var (
	sourceStatusToProto = map[content.SourceStatus]pipelinev1.SourceStatus{
		content.SourceStatusPending:    pipelinev1.SourceStatus_SOURCE_STATUS_PENDING,
		content.SourceStatusCrawling:   pipelinev1.SourceStatus_SOURCE_STATUS_CRAWLING,
		content.SourceStatusProcessing: pipelinev1.SourceStatus_SOURCE_STATUS_PROCESSING,
		content.SourceStatusReady:      pipelinev1.SourceStatus_SOURCE_STATUS_READY,
		content.SourceStatusFailed:     pipelinev1.SourceStatus_SOURCE_STATUS_FAILED,
	}
	sourceStatusFromProto = reverse(sourceStatusToProto)
	crawlerToProto        = map[content.Crawler]pipelinev1.Crawler{
		content.CrawlerBuiltin:   pipelinev1.Crawler_CRAWLER_BUILTIN,
		content.CrawlerFirecrawl: pipelinev1.Crawler_CRAWLER_FIRECRAWL,
	}
	crawlerFromProto = reverse(crawlerToProto)
)

func sourceToProto(s *content.Source) *pipelinev1.Source {
	o := s.CrawlOptions
	return &pipelinev1.Source{
		SourceId: s.ID,
		Name:     s.Name,
		Url:      s.URL,
		Crawler:  crawlerToProto[s.Crawler],
		CrawlOptions: &pipelinev1.CrawlOptions{
			Limit:                 int32(o.Limit),
			MaxDepth:              int32(o.MaxDepth),
			IncludePaths:          o.IncludePaths,
			ExcludePaths:          o.ExcludePaths,
			AllowSubdomains:       o.AllowSubdomains,
			IgnoreQueryParameters: o.IgnoreQueryParameters,
		},
		Status:         sourceStatusToProto[s.Status],
		Error:          s.Error,
		DocumentCount:  s.DocumentCount,
		CreateTime:     ts(s.CreatedAt),
		UpdateTime:     ts(s.UpdatedAt),
		ChunkCount:     s.ChunkCount,
		LastCrawlJobId: s.LastCrawlJobID,
		LastCrawlTime:  ts(s.LastCrawlAt),
	}
}

func documentSummaryToProto(d *content.DocumentSummary) *pipelinev1.Document {
	return &pipelinev1.Document{
		DocumentId:  d.ID,
		SourceId:    d.SourceID,
		Uri:         d.URI,
		Title:       d.Title,
		ContentType: d.ContentType,
		ContentHash: d.ContentHash,
		SizeBytes:   d.SizeBytes,
		Metadata:    d.Metadata,
		CreateTime:  ts(d.CreatedAt),
		UpdateTime:  ts(d.UpdatedAt),
	}
}

func (h *contentService) CreateSource(ctx context.Context, req *pipelinev1.CreateSourceRequest) (*pipelinev1.CreateSourceResponse, error) {
	params := &content.CreateSourceParams{
		Name:    req.GetName(),
		URL:     req.GetUrl(),
		Crawler: crawlerFromProto[req.GetCrawler()],
	}
	if params.Crawler == "" {
		params.Crawler = content.CrawlerBuiltin
	}
	if o := req.GetCrawlOptions(); o != nil {
		params.CrawlOptions = content.CrawlOptions{
			Limit:                 int(o.GetLimit()),
			MaxDepth:              int(o.GetMaxDepth()),
			IncludePaths:          o.GetIncludePaths(),
			ExcludePaths:          o.GetExcludePaths(),
			AllowSubdomains:       o.GetAllowSubdomains(),
			IgnoreQueryParameters: o.GetIgnoreQueryParameters(),
		}
	}
	if params.URL != "" {
		// Refuse before writing: a web source whose crawl cannot start would be a job that hangs.
		if h.s.deps.Crawls == nil {
			return nil, errs.Unimplemented("this server has no crawler; create an upload source (no url) and add documents with IngestDocuments")
		}
		if params.Crawler == content.CrawlerFirecrawl && h.s.deps.Crawls.Firecrawl == nil {
			return nil, errs.FailedPrecondition("this server has no Firecrawl configured (PIPELINE_FIRECRAWL_API_URL); use the built-in crawler (crawler unset)")
		}
		if err := h.crawlCapacity(ctx); err != nil {
			return nil, err
		}
	}
	src, err := h.s.deps.Content.CreateSource(ctx, params)
	if errors.Is(err, errs.ErrAlreadyExists) && params.URL != "" {
		return h.existingWebSource(ctx, params.URL)
	}
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.CreateSourceResponse{Source: sourceToProto(src)}
	if src.URL != "" {
		job, err := h.startCrawl(ctx, src)
		if err != nil {
			return nil, err
		}
		out.Job = jobToProto(job)
	}
	return out, nil
}

// existingWebSource answers a CreateSource for a URL that already has a source: while its
// crawl runs, the source and the running crawl job (a retried request gets what the first one
// started); otherwise AlreadyExists naming the source, to be refreshed instead.
func (h *contentService) existingWebSource(ctx context.Context, url string) (*pipelinev1.CreateSourceResponse, error) {
	src, err := h.s.deps.Content.SourceByURL(ctx, url)
	if err != nil {
		return nil, err
	}
	job, err := h.s.deps.Jobs.ActiveCrawl(ctx, uuid.MustParse(src.ID))
	if err == nil {
		return &pipelinev1.CreateSourceResponse{Source: sourceToProto(src), Job: jobToProto(job)}, nil
	}
	if !errors.Is(err, errs.ErrNotFound) {
		return nil, err
	}
	return nil, fmt.Errorf("%w: source %s already has the url %s; refresh it (RefreshSource) to crawl again", errs.ErrAlreadyExists, src.ID, url)
}

// crawlCapacity refuses a new crawl while MaxActiveCrawls run: crawls run in this process.
func (h *contentService) crawlCapacity(ctx context.Context) error {
	n, err := h.s.deps.Jobs.ActiveCrawls(ctx)
	if err != nil {
		return err
	}
	if n >= h.s.cfg.MaxActiveCrawls {
		return fmt.Errorf("%w: %d crawls are running (limit %d, PIPELINE_MAX_ACTIVE_CRAWLS); retry later",
			errs.ErrResourceExhausted, n, h.s.cfg.MaxActiveCrawls)
	}
	return nil
}

// startCrawl creates the source's crawl job and starts the crawler, or returns the crawl job
// already running: never two crawls of one source.
func (h *contentService) startCrawl(ctx context.Context, src *content.Source) (*jobs.Job, error) {
	if running, err := h.s.deps.Jobs.ActiveCrawl(ctx, uuid.MustParse(src.ID)); err == nil {
		return running, nil
	}
	if err := h.crawlCapacity(ctx); err != nil {
		return nil, err
	}
	job, err := h.s.deps.Jobs.CreateCrawl(ctx, uuid.MustParse(src.ID), h.s.cfg.JobTimeout)
	if errors.Is(err, jobs.ErrCrawlRunning) {
		return job, nil
	}
	if err != nil {
		return nil, err
	}
	if err := h.s.deps.Crawls.Start(src, job); err != nil {
		if _, ferr := h.s.deps.Jobs.Fail(context.WithoutCancel(ctx), job.ID, "the crawler could not start: "+err.Error()); ferr != nil {
			h.s.log.WarnContext(ctx, "fail crawl job that could not start", "job_id", job.ID, "err", ferr)
		}
		return nil, err
	}
	return job, nil
}

func (h *contentService) GetSource(ctx context.Context, req *pipelinev1.GetSourceRequest) (*pipelinev1.GetSourceResponse, error) {
	if _, err := parseID("source_id", req.GetSourceId()); err != nil {
		return nil, err
	}
	src, err := h.s.deps.Content.GetSource(ctx, &content.GetSourceParams{ID: req.GetSourceId()})
	if err != nil {
		return nil, err
	}
	return &pipelinev1.GetSourceResponse{Source: sourceToProto(src)}, nil
}

func (h *contentService) ListSources(ctx context.Context, req *pipelinev1.ListSourcesRequest) (*pipelinev1.ListSourcesResponse, error) {
	list, next, err := h.s.deps.Content.ListSources(ctx, &content.ListSourcesParams{
		Status:    sourceStatusFromProto[req.GetStatus()],
		PageSize:  int(req.GetPageSize()),
		PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.ListSourcesResponse{NextPageToken: next, Sources: make([]*pipelinev1.Source, 0, len(list))}
	for _, s := range list {
		out.Sources = append(out.Sources, sourceToProto(s))
	}
	return out, nil
}

// DeleteSource cancels the source's active jobs, so watchers see them end, then deletes the
// source (its documents, jobs and results go with it) and its vectors.
func (h *contentService) DeleteSource(ctx context.Context, req *pipelinev1.DeleteSourceRequest) (*pipelinev1.DeleteSourceResponse, error) {
	id, err := parseID("source_id", req.GetSourceId())
	if err != nil {
		return nil, err
	}
	if _, err := h.s.deps.Content.GetSource(ctx, &content.GetSourceParams{ID: id.String()}); err != nil {
		return nil, err
	}
	if err := h.cancelActiveJobs(ctx, id); err != nil {
		return nil, err
	}
	if _, err := h.s.deps.Content.DeleteSource(ctx, &content.DeleteSourceParams{ID: id.String()}); err != nil {
		return nil, err
	}
	// The rows are gone first, so a worker finishing a document of this source now finds it
	// deleted and removes what it just stored; then the source's vectors go. A purge that fails
	// stays recorded in Postgres and the reconciler retries it.
	if p := h.s.deps.Purger; p != nil {
		if err := p.Purge(ctx, id.String()); err != nil {
			h.s.log.WarnContext(ctx, "purge vectors of deleted source; the reconciler will retry", "source_id", id, "err", err)
		}
	}
	return &pipelinev1.DeleteSourceResponse{}, nil
}

func (h *contentService) cancelActiveJobs(ctx context.Context, sourceID uuid.UUID) error {
	for _, st := range []jobs.Status{jobs.StatusPending, jobs.StatusInProgress} {
		token := ""
		for {
			list, next, err := h.s.deps.Jobs.List(ctx, jobs.ListParams{
				SourceID: uuid.NullUUID{UUID: sourceID, Valid: true}, Status: st, PageSize: 1000, PageToken: token,
			})
			if err != nil {
				return err
			}
			for _, j := range list {
				// A job that finished meanwhile cannot be cancelled; that is fine, it is not active.
				if _, err := h.s.deps.Jobs.Cancel(ctx, j.ID); err != nil && !errs.IsFailedPrecondition(err) {
					return err
				}
			}
			if next == "" {
				break
			}
			token = next
		}
	}
	return nil
}

func (h *contentService) RefreshSource(ctx context.Context, req *pipelinev1.RefreshSourceRequest) (*pipelinev1.RefreshSourceResponse, error) {
	if _, err := parseID("source_id", req.GetSourceId()); err != nil {
		return nil, err
	}
	src, err := h.s.deps.Content.GetSource(ctx, &content.GetSourceParams{ID: req.GetSourceId()})
	if err != nil {
		return nil, err
	}
	if src.URL == "" {
		return nil, errs.FailedPrecondition("source %s is an upload source: it has no URL to crawl; upload changed documents with IngestDocuments", src.ID)
	}
	if h.s.deps.Crawls == nil {
		return nil, errs.Unimplemented("this server has no crawler")
	}
	if src.Crawler == content.CrawlerFirecrawl && h.s.deps.Crawls.Firecrawl == nil {
		return nil, errs.FailedPrecondition("this server has no Firecrawl configured (PIPELINE_FIRECRAWL_API_URL)")
	}
	job, err := h.startCrawl(ctx, src)
	if err != nil {
		return nil, err
	}
	return &pipelinev1.RefreshSourceResponse{Job: jobToProto(job)}, nil
}

// IngestDocuments saves the documents (all or none) and starts one processing job for them.
// Every document goes into the job; processing skips the unchanged ones by content hash.
func (h *contentService) IngestDocuments(ctx context.Context, req *pipelinev1.IngestDocumentsRequest) (*pipelinev1.IngestDocumentsResponse, error) {
	sourceID, err := parseID("source_id", req.GetSourceId())
	if err != nil {
		return nil, err
	}
	// Backpressure: with too much work waiting, refuse before storing anything.
	batches := (len(req.GetDocuments()) + h.s.cfg.BatchSize - 1) / max(h.s.cfg.BatchSize, 1)
	if err := h.backlog.admit(ctx, h.s.deps.Jobs.Backlog, h.s.cfg.MaxBacklogBatches, batches); err != nil {
		return nil, err
	}
	inputs := make([]content.DocumentInput, 0, len(req.GetDocuments()))
	for _, d := range req.GetDocuments() {
		inputs = append(inputs, content.DocumentInput{
			URI:         d.GetUri(),
			Title:       d.GetTitle(),
			ContentType: d.GetContentType(),
			Content:     d.GetContent(),
			Metadata:    d.GetMetadata(),
		})
	}
	saved, err := h.s.deps.Content.UpsertDocuments(ctx, &content.UpsertDocumentsParams{SourceID: sourceID.String(), Documents: inputs})
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.IngestDocumentsResponse{Documents: make([]*pipelinev1.Document, 0, len(saved))}
	ids := make([]uuid.UUID, 0, len(saved))
	for _, u := range saved {
		id, err := uuid.Parse(u.Document.ID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
		out.Documents = append(out.Documents, documentSummaryToProto(&u.Document.DocumentSummary))
		if u.Changed {
			out.ChangedCount++
		}
	}
	job, err := h.s.deps.Jobs.Create(ctx, jobs.CreateParams{Type: jobs.TypeProcess, SourceID: sourceID, DocumentIDs: ids})
	if err != nil {
		return nil, err
	}
	// The source became PROCESSING as the job was created (processing.Hooks, before the job
	// was queued): setting it here, after, could undo a worker that had already finished it.
	out.Job = jobToProto(job)
	return out, nil
}

func (h *contentService) ListDocuments(ctx context.Context, req *pipelinev1.ListDocumentsRequest) (*pipelinev1.ListDocumentsResponse, error) {
	if _, err := parseID("source_id", req.GetSourceId()); err != nil {
		return nil, err
	}
	// The store answers NotFound for an unknown source rather than an empty list.
	list, next, err := h.s.deps.Content.ListDocuments(ctx, &content.ListDocumentsParams{
		SourceID: req.GetSourceId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &pipelinev1.ListDocumentsResponse{NextPageToken: next, Documents: make([]*pipelinev1.Document, 0, len(list))}
	for _, d := range list {
		out.Documents = append(out.Documents, documentSummaryToProto(d))
	}
	return out, nil
}

func (h *contentService) GetDocument(ctx context.Context, req *pipelinev1.GetDocumentRequest) (*pipelinev1.GetDocumentResponse, error) {
	if _, err := parseID("document_id", req.GetDocumentId()); err != nil {
		return nil, err
	}
	d, err := h.s.deps.Content.GetDocument(ctx, &content.GetDocumentParams{ID: req.GetDocumentId()})
	if err != nil {
		return nil, err
	}
	out := documentSummaryToProto(&d.DocumentSummary)
	out.Content = d.Content
	return &pipelinev1.GetDocumentResponse{Document: out}, nil
}

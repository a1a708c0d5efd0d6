package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// ErrCrawlRunning says the source already has an active crawl job (a unique index allows one).
var ErrCrawlRunning = fmt.Errorf("%w: the source already has an active crawl", errs.ErrAlreadyExists)

// CreateCrawl creates a pending crawl job for the source, or returns ErrCrawlRunning (wrapped)
// with the active one when a crawl is already running: never two crawls of one source.
func (m *Manager) CreateCrawl(ctx context.Context, sourceID uuid.UUID, timeout time.Duration) (*Job, error) {
	job, err := m.Create(ctx, CreateParams{Type: TypeCrawl, SourceID: sourceID, Timeout: timeout})
	if errors.Is(err, errs.ErrAlreadyExists) {
		active, aerr := m.ActiveCrawl(ctx, sourceID)
		if aerr != nil {
			return nil, aerr
		}
		return active, ErrCrawlRunning
	}
	return job, err
}

// ActiveCrawl returns the source's pending or running crawl job; errs.ErrNotFound when none.
func (m *Manager) ActiveCrawl(ctx context.Context, sourceID uuid.UUID) (*Job, error) {
	src := uuid.NullUUID{UUID: sourceID, Valid: true}
	for _, st := range []Status{StatusInProgress, StatusPending} {
		list, _, err := m.List(ctx, ListParams{SourceID: src, Type: TypeCrawl, Status: st, PageSize: 1})
		if err != nil {
			return nil, err
		}
		if len(list) > 0 {
			return list[0], nil
		}
	}
	return nil, errs.NotFound("active crawl of source", sourceID.String())
}

// UpdateCrawlProgress stores a running crawl job's page counts (and the external crawler's id,
// when given). A job that is not a running crawl is a failed precondition.
func (m *Manager) UpdateCrawlProgress(ctx context.Context, id uuid.UUID, p CrawlProgress, externalID string) (*Job, error) {
	job, err := m.store.JobSetCrawlProgress(ctx, &JobSetCrawlProgressParams{ID: id, Progress: p, ExternalID: externalID})
	if errors.Is(err, errs.ErrNotFound) {
		cur, gerr := m.Get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return nil, errs.FailedPrecondition("job %s is a %s job in status %s: crawl progress is recorded only on a running crawl", id, cur.Type, cur.Status)
	}
	if err != nil {
		return nil, err
	}
	m.notify(ctx, job)
	return job, nil
}

// StaleCrawls lists up to max active crawl jobs with no write since before.
func (m *Manager) StaleCrawls(ctx context.Context, before time.Time, max int) ([]*Job, error) {
	return m.store.JobListStaleCrawls(ctx, before, max)
}

// GetByExternalID returns the crawl job an external crawler (Firecrawl) knows by id.
func (m *Manager) GetByExternalID(ctx context.Context, id string) (*Job, error) {
	if id == "" {
		return nil, errs.InvalidArgument("external_id", "required")
	}
	return m.store.JobGetByExternalID(ctx, id)
}

// Backlog counts the batches queued or running: how much processing work is waiting.
func (m *Manager) Backlog(ctx context.Context) (int, error) { return m.store.BatchBacklog(ctx) }

// ActiveCrawls counts crawl jobs pending or running.
func (m *Manager) ActiveCrawls(ctx context.Context) (int, error) {
	return m.store.JobCountActiveCrawls(ctx)
}

// Package processing holds the server side of processing that is not transport: what happens
// when a job changes (event, Redis status cache and result summary, the source's status) and
// the reconciler that makes sure no work is lost or left hanging. It knows jobs, content, the
// queue and the event bus; it knows nothing about gRPC.
package processing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/pipeline-dev/pipeline/internal/content"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/events"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// Hooks is the job manager's Notifier: after every committed job change it announces the change
// to watchers, refreshes the spec's Redis keys, and when a processing job ends, settles its
// source's status. Postgres stays the truth; the Redis keys are a cache for cheap polling.
type Hooks struct {
	Bus     *events.Bus
	Redis   *redis.Client
	Prefix  string
	Content content.Store
	// Jobs is set after the Manager is built (it needs Hooks first).
	Jobs      *jobs.Manager
	ResultTTL time.Duration
	Log       *slog.Logger
	// CrawlCancelled, when set, is told about crawl jobs that were cancelled, so an external
	// crawler (Firecrawl) stops too.
	CrawlCancelled func(ctx context.Context, j *jobs.Job)
}

// StatusKey is the spec's processing:status:{job_id}.
func StatusKey(prefix string, jobID uuid.UUID) string {
	return prefix + "processing:status:" + jobID.String()
}

// ResultKey is the spec's processing:result:{job_id}.
func ResultKey(prefix string, jobID uuid.UUID) string {
	return prefix + "processing:result:" + jobID.String()
}

// Summary is what the Redis keys hold (JSON).
type Summary struct {
	JobID          string    `json:"job_id"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	SourceID       string    `json:"source_id"`
	Version        int64     `json:"version"`
	DocumentCount  int       `json:"document_count"`
	ProcessedCount int64     `json:"processed_count"`
	ErrorCount     int64     `json:"error_count"`
	ChunkCount     int64     `json:"chunk_count"`
	Error          string    `json:"error,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func summarize(j *jobs.Job) Summary {
	return Summary{
		JobID: j.ID.String(), Type: string(j.Type), Status: string(j.Status), SourceID: j.SourceID.String(),
		Version: j.Version, DocumentCount: len(j.DocumentIDs), ProcessedCount: j.ProcessedCount,
		ErrorCount: j.ErrorCount, ChunkCount: j.ChunkCount, Error: j.Error, UpdatedAt: j.UpdatedAt,
	}
}

// statusScript writes the status cache only if it holds an older version (or nothing), so two
// processes reporting out of order cannot move the cache backwards.
var statusScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, obj = pcall(cjson.decode, cur)
  if ok and obj['version'] and tonumber(obj['version']) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

// JobChanged implements jobs.Notifier.
// The event goes out last, so a watcher woken by it finds the Redis keys and the source's status
// already updated (a watcher that polls may still be a moment ahead).
func (h *Hooks) JobChanged(ctx context.Context, j *jobs.Job) error {
	defer h.Bus.Publish(ctx, j.ID, j.Version)
	var errList []error
	body, _ := json.Marshal(summarize(j))
	ttl := 7 * 24 * time.Hour
	if j.Status.Terminal() {
		ttl = h.ResultTTL
	}
	if err := statusScript.Run(ctx, h.Redis, []string{StatusKey(h.Prefix, j.ID)}, body, j.Version, ttl.Milliseconds()).Err(); err != nil {
		errList = append(errList, fmt.Errorf("status cache: %w", err))
	}
	if j.Type == jobs.TypeProcess && j.Status == jobs.StatusPending && j.Version == 1 {
		if err := h.startSource(ctx, j); err != nil {
			errList = append(errList, fmt.Errorf("start source: %w", err))
		}
	}
	if j.Status.Terminal() {
		if err := h.Redis.Set(ctx, ResultKey(h.Prefix, j.ID), body, h.ResultTTL).Err(); err != nil {
			errList = append(errList, fmt.Errorf("result summary: %w", err))
		}
		if j.Type == jobs.TypeProcess {
			if err := h.settleSource(ctx, j); err != nil {
				errList = append(errList, fmt.Errorf("settle source: %w", err))
			}
		}
		if j.Type == jobs.TypeCrawl && j.Status == jobs.StatusCancelled && h.CrawlCancelled != nil {
			h.CrawlCancelled(ctx, j)
		}
	}
	return errors.Join(errList...)
}

// startSource moves the source of a processing job just created (version 1: the Manager
// announces a new job before it enqueues it, so no worker can have finished it yet) to
// PROCESSING and clears the note its last run left. Every new processing job passes here,
// including a RetryJob of a READY or FAILED source, so that settleSource always finds the source
// PROCESSING and may set READY again: READY -> READY is not a transition, and without this a
// successful retry left "N of M documents failed" on the source.
func (h *Hooks) startSource(ctx context.Context, j *jobs.Job) error {
	if h.Content == nil {
		return nil
	}
	_, err := h.Content.MoveSourceStatus(ctx, &content.UpdateSourceStatusParams{
		ID: j.SourceID.String(), Status: content.SourceStatusProcessing,
	})
	if errors.Is(err, errs.ErrNotFound) || errs.IsFailedPrecondition(err) {
		return nil // deleted meanwhile
	}
	return err
}

// settleSource gives the source of a finished processing job its status, unless another
// processing job of the source is still active (then it stays PROCESSING):
// COMPLETED -> READY, FAILED -> FAILED with the job's error, CANCELLED -> READY noting it.
func (h *Hooks) settleSource(ctx context.Context, j *jobs.Job) error {
	if h.Jobs == nil || h.Content == nil {
		return nil
	}
	active, err := h.Jobs.SourceHasActiveProcessing(ctx, j.SourceID)
	if err != nil || active {
		return err
	}
	upd := &content.UpdateSourceStatusParams{ID: j.SourceID.String(), Status: content.SourceStatusReady}
	switch j.Status {
	case jobs.StatusFailed:
		upd.Status, upd.Error = content.SourceStatusFailed, j.Error
	case jobs.StatusCancelled:
		upd.Error = "the last processing job was cancelled; some documents may not be searchable"
	case jobs.StatusCompleted:
		if j.ErrorCount > 0 {
			upd.Error = fmt.Sprintf("%d of %d documents failed in the last processing job; see its per-document results", j.ErrorCount, len(j.DocumentIDs))
		}
	}
	_, err = h.Content.MoveSourceStatus(ctx, upd)
	if errors.Is(err, errs.ErrNotFound) || errs.IsFailedPrecondition(err) {
		return nil // deleted, or moved on (a crawl started)
	}
	return err
}

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
	"strings"
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

// Summary is what the Redis keys hold (JSON). The version comes first, so that statusScript
// reads it without decoding the rest.
type Summary struct {
	Version        int64     `json:"version"`
	JobID          string    `json:"job_id"`
	Type           string    `json:"type"`
	Status         string    `json:"status"`
	SourceID       string    `json:"source_id"`
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
// processes reporting out of order cannot move the cache backwards. The version is read from
// the start of the JSON (Summary writes it first), which costs Redis a fraction of decoding the
// whole value: this script runs for every job change. A value that does not start with it (one
// written before the version came first) is decoded.
var statusScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = string.match(cur, '^{"version":(%d+)[,}]')
  if not v then
    local ok, obj = pcall(cjson.decode, cur)
    if ok and type(obj) == 'table' then v = obj['version'] end
  end
  if v and tonumber(v) and tonumber(v) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

// JobChanged implements jobs.Notifier.
// The event goes out last, so a watcher woken by it finds the Redis keys and the source's status
// already updated (a watcher that polls may still be a moment ahead).
func (h *Hooks) JobChanged(ctx context.Context, j *jobs.Job) error {
	return h.JobsChanged(ctx, []*jobs.Job{j})
}

// JobsChanged implements jobs.GroupNotifier: what JobChanged does for each job, with one Redis
// round trip for all of their keys and events and one Postgres statement to learn which of the
// finished processing jobs' sources have other active processing. The steps that must come
// before the events (a new processing job's source to start, a finished one's to settle, a
// cancelled crawl's crawler to stop) run first; then the keys and, last in the same pipeline,
// the events, so a watcher woken by one finds the keys and the source's status updated.
func (h *Hooks) JobsChanged(ctx context.Context, list []*jobs.Job) error {
	var errList []error
	var settle []*jobs.Job
	for _, j := range list {
		switch {
		case j.Type == jobs.TypeProcess && j.Status == jobs.StatusPending && j.Version == 1:
			if err := h.startSource(ctx, j); err != nil {
				errList = append(errList, fmt.Errorf("start source: %w", err))
			}
		case j.Type == jobs.TypeProcess && j.Status.Terminal():
			settle = append(settle, j)
		case j.Type == jobs.TypeCrawl && j.Status == jobs.StatusCancelled && h.CrawlCancelled != nil:
			h.CrawlCancelled(ctx, j)
		}
	}
	if err := h.settleSources(ctx, settle); err != nil {
		errList = append(errList, fmt.Errorf("settle source: %w", err))
	}
	notices := make([]events.Notice, len(list))
	for i, j := range list {
		notices[i] = events.Notice{JobID: j.ID, Version: j.Version}
	}
	if err := h.writeKeys(ctx, list, notices); err != nil {
		errList = append(errList, err)
		// The events may not have gone out: through the bus's own queue (a notice heard twice
		// is heard once).
		for _, n := range notices {
			h.Bus.Publish(ctx, n.JobID, n.Version)
		}
	} else {
		h.Bus.Deliver(notices)
	}
	return errors.Join(errList...)
}

// writeKeys refreshes the jobs' status cache and, for finished jobs, writes their result
// summary, and then publishes the notices to other replicas, all in one pipeline.
func (h *Hooks) writeKeys(ctx context.Context, list []*jobs.Job, notices []events.Notice) error {
	write := func(pipe redis.Pipeliner) error {
		for _, j := range list {
			body, _ := json.Marshal(summarize(j))
			ttl := 7 * 24 * time.Hour
			if j.Status.Terminal() {
				ttl = h.ResultTTL
			}
			statusScript.EvalSha(ctx, pipe, []string{StatusKey(h.Prefix, j.ID)}, body, j.Version, ttl.Milliseconds())
			if j.Status.Terminal() {
				pipe.Set(ctx, ResultKey(h.Prefix, j.ID), body, h.ResultTTL)
			}
		}
		h.Bus.PublishIn(ctx, pipe, notices)
		return nil
	}
	cmds, err := h.Redis.Pipelined(ctx, write)
	if err != nil && scriptMissing(cmds) {
		// A Redis that restarted, or never ran the script: load it and send the writes again
		// (they are idempotent: the script keeps the newest version). The events went out with
		// the first pipeline and go again with this one: a notice heard twice is heard once.
		if err = statusScript.Load(ctx, h.Redis).Err(); err == nil {
			_, err = h.Redis.Pipelined(ctx, write)
		}
	}
	if err != nil {
		return fmt.Errorf("status cache, result summary and events: %w", err)
	}
	return nil
}

// scriptMissing tells whether a pipeline failed because Redis did not know a script's sha.
func scriptMissing(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return true
		}
	}
	return false
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

// settleSources gives the source of each finished processing job its status, unless another
// processing job of the source is still active (then it stays PROCESSING):
// COMPLETED -> READY, FAILED -> FAILED with the job's error, CANCELLED -> READY noting it. Of
// several jobs of one source the last to finish decides.
func (h *Hooks) settleSources(ctx context.Context, finished []*jobs.Job) error {
	if h.Jobs == nil || h.Content == nil || len(finished) == 0 {
		return nil
	}
	last := make(map[uuid.UUID]*jobs.Job, len(finished))
	ids := make([]uuid.UUID, 0, len(finished))
	for _, j := range finished {
		prev := last[j.SourceID]
		if prev == nil {
			ids = append(ids, j.SourceID)
		}
		if prev == nil || finishedAt(j).After(finishedAt(prev)) {
			last[j.SourceID] = j
		}
	}
	active, err := h.Jobs.SourcesWithActiveProcessing(ctx, ids)
	if err != nil {
		return err
	}
	var errList []error
	for _, id := range ids {
		if !active[id] {
			errList = append(errList, h.settleSource(ctx, last[id]))
		}
	}
	return errors.Join(errList...)
}

func finishedAt(j *jobs.Job) time.Time {
	if j.FinishedAt != nil {
		return *j.FinishedAt
	}
	return j.UpdatedAt
}

// settleSource gives the source of a finished processing job, with no other processing job
// active, its status.
func (h *Hooks) settleSource(ctx context.Context, j *jobs.Job) error {
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
	_, err := h.Content.MoveSourceStatus(ctx, upd)
	if errors.Is(err, errs.ErrNotFound) || errs.IsFailedPrecondition(err) {
		return nil // deleted, or moved on (a crawl started)
	}
	return err
}

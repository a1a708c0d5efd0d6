// Package stats reads the figures an operator watches from Postgres, the source of truth: jobs by
// type and status, the processing backlog, and recent throughput. It only reads, with one query
// per figure (SQL in sql/), each cheap enough to run on every GetStats call; the tables and their
// meaning belong to internal/jobs.
package stats

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pipeline-dev/pipeline/internal/jobs"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

var (
	qJobCounts  = mustQuery("job_counts")
	qBacklog    = mustQuery("backlog")
	qThroughput = mustQuery("throughput")
)

func mustQuery(name string) string {
	b, err := sqlFiles.ReadFile("sql/" + name + ".sql")
	if err != nil {
		panic(fmt.Sprintf("stats: missing query %s: %v", name, err))
	}
	return string(b)
}

// The queries take positional arguments ($1), not pgx named ones: pgx rewrites named arguments
// with a lexer that does not know SQL comments.

// Reader runs the queries.
type Reader struct {
	pool *pgxpool.Pool
}

// New returns a Reader on pool.
func New(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// JobCounts are jobs by status.
type JobCounts struct {
	Pending, InProgress, Completed, Failed, Cancelled int64
}

// Add returns the sum of c and o.
func (c JobCounts) Add(o JobCounts) JobCounts {
	return JobCounts{
		Pending: c.Pending + o.Pending, InProgress: c.InProgress + o.InProgress, Completed: c.Completed + o.Completed,
		Failed: c.Failed + o.Failed, Cancelled: c.Cancelled + o.Cancelled,
	}
}

func (c *JobCounts) add(s jobs.Status, n int64) error {
	switch s {
	case jobs.StatusPending:
		c.Pending += n
	case jobs.StatusInProgress:
		c.InProgress += n
	case jobs.StatusCompleted:
		c.Completed += n
	case jobs.StatusFailed:
		c.Failed += n
	case jobs.StatusCancelled:
		c.Cancelled += n
	default:
		return fmt.Errorf("stats: unknown job status %q", s)
	}
	return nil
}

// Jobs are job counts by type.
type Jobs struct {
	Crawl, Process JobCounts
}

// Jobs counts jobs by type and status.
func (r *Reader) Jobs(ctx context.Context) (Jobs, error) {
	rows, err := r.pool.Query(ctx, qJobCounts)
	if err != nil {
		return Jobs{}, fmt.Errorf("stats: count jobs: %w", err)
	}
	var out Jobs
	var typ, st string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&typ, &st, &n}, func() error {
		switch jobs.Type(typ) {
		case jobs.TypeCrawl:
			return out.Crawl.add(jobs.Status(st), n)
		case jobs.TypeProcess:
			return out.Process.add(jobs.Status(st), n)
		}
		return fmt.Errorf("stats: unknown job type %q", typ)
	})
	if err != nil {
		return Jobs{}, fmt.Errorf("stats: count jobs: %w", err)
	}
	return out, nil
}

// Backlog is the processing work not done yet, from the batches of active jobs.
type Backlog struct {
	BatchesQueued, BatchesRunning, DocumentsQueued int64
	// OldestQueuedAge is how long the longest-waiting queued batch has waited; 0 when none waits.
	OldestQueuedAge time.Duration
}

// Backlog reads the processing backlog.
func (r *Reader) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest float64
	err := r.pool.QueryRow(ctx, qBacklog).Scan(&b.BatchesQueued, &b.BatchesRunning, &b.DocumentsQueued, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("stats: read backlog: %w", err)
	}
	b.OldestQueuedAge = max(0, time.Duration(oldest*float64(time.Second))).Round(time.Millisecond)
	return b, nil
}

// Throughput is the documents whose result was recorded over a window, by outcome.
type Throughput struct {
	Window                     time.Duration
	Succeeded, Skipped, Failed int64
}

// Documents is every document counted, whatever its outcome.
func (t Throughput) Documents() int64 { return t.Succeeded + t.Skipped + t.Failed }

// PerSecond is Documents over the window.
func (t Throughput) PerSecond() float64 {
	if t.Window <= 0 {
		return 0
	}
	return float64(t.Documents()) / t.Window.Seconds()
}

// Throughput counts the per-document results recorded over the last window.
func (r *Reader) Throughput(ctx context.Context, window time.Duration) (Throughput, error) {
	if window <= 0 {
		return Throughput{}, fmt.Errorf("stats: window must be positive, got %s", window)
	}
	t := Throughput{Window: window}
	err := r.pool.QueryRow(ctx, qThroughput, window.Seconds()).
		Scan(&t.Succeeded, &t.Skipped, &t.Failed)
	if err != nil {
		return Throughput{}, fmt.Errorf("stats: read throughput: %w", err)
	}
	return t, nil
}

package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/db/dbtest"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

// testBundle is what most tests need: a Manager on its own migrated schema, the notifier that
// records what it published, and a source to hang jobs on.
type testBundle struct {
	pool     *pgxpool.Pool
	mgr      *jobs.Manager
	notifier *recordingNotifier
	source   uuid.UUID
}

// setup builds a bundle; opts adjust the Manager's Config before it is built.
func setup(t *testing.T, opts ...func(*jobs.Config)) *testBundle {
	t.Helper()
	pool := dbtest.New(t)
	notifier := &recordingNotifier{}
	cfg := jobs.Config{Notifier: notifier, Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	mgr, err := jobs.NewManager(jobs.NewPgStore(pool), cfg)
	require.NoError(t, err)
	return &testBundle{pool: pool, mgr: mgr, notifier: notifier, source: insertSource(t, pool)}
}

// insertSource adds a source row, which jobs.source_id references.
func insertSource(t *testing.T, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := pool.Exec(t.Context(), `INSERT INTO sources (id, name, status) VALUES ($1, 'test', 'pending')`, id)
	require.NoError(t, err)
	return id
}

func newDocIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

// createJob creates a process job over docs on the bundle's source.
func (b *testBundle) createJob(t *testing.T, docs ...uuid.UUID) *jobs.Job {
	t.Helper()
	job, err := b.mgr.Create(t.Context(), jobs.CreateParams{Type: jobs.TypeProcess, SourceID: b.source, DocumentIDs: docs})
	require.NoError(t, err)
	return job
}

// jobIn returns a job driven through the Manager into status.
func (b *testBundle) jobIn(t *testing.T, status jobs.Status, docs ...uuid.UUID) *jobs.Job {
	t.Helper()
	ctx := t.Context()
	job := b.createJob(t, docs...)
	var err error
	switch status {
	case jobs.StatusPending:
	case jobs.StatusInProgress:
		job, err = b.mgr.Start(ctx, job.ID)
	case jobs.StatusCompleted:
		_, err = b.mgr.Start(ctx, job.ID)
		require.NoError(t, err)
		job, err = b.mgr.Complete(ctx, job.ID)
	case jobs.StatusFailed:
		job, err = b.mgr.Fail(ctx, job.ID, "boom")
	case jobs.StatusCancelled:
		job, err = b.mgr.Cancel(ctx, job.ID)
	default:
		t.Fatalf("jobIn: unknown status %q", status)
	}
	require.NoError(t, err)
	require.Equal(t, status, job.Status)
	return job
}

// rowText is the job's row and its per-document rows exactly as Postgres prints them, to prove
// that a refused call wrote nothing.
func rowText(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) string {
	t.Helper()
	var s string
	err := pool.QueryRow(t.Context(), `
		SELECT j::text || ' | ' || COALESCE((SELECT string_agg(d::text, ', ' ORDER BY d.document_id)
		                                     FROM job_documents d WHERE d.job_id = j.id), '')
		FROM jobs j WHERE j.id = $1`, id).Scan(&s)
	require.NoError(t, err)
	return s
}

// requireInvalidArgument checks err is an InvalidArgument naming field.
func requireInvalidArgument(t *testing.T, err error, field string) {
	t.Helper()
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
	var iae *errs.InvalidArgumentError
	require.ErrorAs(t, err, &iae)
	require.Equal(t, field, iae.Field)
}

// recordingNotifier remembers every (job, version) it was told about. It is a GroupNotifier
// and remembers the largest group it was told about at once.
type recordingNotifier struct {
	mu        sync.Mutex
	events    []*jobs.Job
	err       error
	groups    int // JobsChanged calls
	sameGroup int // jobs told twice in one JobsChanged call (must stay 0)
	// mixed counts the JobsChanged calls that told of a job started and of a job ended at once.
	mixed int
}

func (n *recordingNotifier) JobsChanged(_ context.Context, list []*jobs.Job) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups++
	seen := map[uuid.UUID]bool{}
	statuses := map[jobs.Status]bool{}
	for _, j := range list {
		if seen[j.ID] {
			n.sameGroup++
		}
		seen[j.ID] = true
		statuses[j.Status] = true
	}
	if statuses[jobs.StatusInProgress] && statuses[jobs.StatusCompleted] {
		n.mixed++
	}
	n.events = append(n.events, list...)
	return n.err
}

func (n *recordingNotifier) JobChanged(_ context.Context, job *jobs.Job) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, job)
	return n.err
}

// versions lists the versions published for one job, in publication order.
func (n *recordingNotifier) versions(id uuid.UUID) []int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var vs []int64
	for _, e := range n.events {
		if e.ID == id {
			vs = append(vs, e.Version)
		}
	}
	return vs
}

// waitVersions waits until the versions announced for the job are want (the announcements of a
// group commit follow its answers), and fails if they become anything else.
func (n *recordingNotifier) waitVersions(t *testing.T, id uuid.UUID, want ...int64) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, n.versions(id))
	}, 10*time.Second, time.Millisecond)
}

// fakeEnqueuer stands in for the queue: it hands out message ids, or fails with err.
type fakeEnqueuer struct {
	mu   sync.Mutex
	err  error
	seen []*jobs.Batch
}

func (e *fakeEnqueuer) EnqueueBatch(_ context.Context, b *jobs.Batch, n int) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, b)
	if e.err != nil {
		return "", e.err
	}
	return e.MessageID(b.ID, n), nil
}

func (e *fakeEnqueuer) MessageID(batchID uuid.UUID, n int) string {
	return fmt.Sprintf("msg-%s-%d", batchID, n)
}

func (e *fakeEnqueuer) batches() []*jobs.Batch {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*jobs.Batch(nil), e.seen...)
}

var errQueueDown = errors.New("queue is down")

package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/jobs"
)

var allStatuses = []jobs.Status{
	jobs.StatusPending, jobs.StatusInProgress, jobs.StatusCompleted, jobs.StatusFailed, jobs.StatusCancelled,
}

// legal is the state machine written out by hand, independent of the package's table.
var legal = map[[2]jobs.Status]bool{
	{jobs.StatusPending, jobs.StatusInProgress}:   true,
	{jobs.StatusPending, jobs.StatusFailed}:       true,
	{jobs.StatusPending, jobs.StatusCancelled}:    true,
	{jobs.StatusInProgress, jobs.StatusCompleted}: true,
	{jobs.StatusInProgress, jobs.StatusFailed}:    true,
	{jobs.StatusInProgress, jobs.StatusCancelled}: true,
}

func TestCanTransition(t *testing.T) {
	t.Parallel()
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			require.Equal(t, legal[[2]jobs.Status{from, to}], jobs.CanTransition(from, to), "%s -> %s", from, to)
		}
	}
}

func TestStatusTerminal(t *testing.T) {
	t.Parallel()
	for _, s := range allStatuses {
		hasExit := false
		for _, to := range allStatuses {
			hasExit = hasExit || jobs.CanTransition(s, to)
		}
		require.Equal(t, !hasExit, s.Terminal(), "%s", s)
	}
}

// transitionMethods are the Manager methods that change a job's status.
var transitionMethods = []struct {
	name string
	to   jobs.Status
	call func(ctx context.Context, m *jobs.Manager, id uuid.UUID) (*jobs.Job, error)
}{
	{"Start", jobs.StatusInProgress, func(ctx context.Context, m *jobs.Manager, id uuid.UUID) (*jobs.Job, error) {
		return m.Start(ctx, id)
	}},
	{"Complete", jobs.StatusCompleted, func(ctx context.Context, m *jobs.Manager, id uuid.UUID) (*jobs.Job, error) {
		return m.Complete(ctx, id)
	}},
	{"Fail", jobs.StatusFailed, func(ctx context.Context, m *jobs.Manager, id uuid.UUID) (*jobs.Job, error) {
		return m.Fail(ctx, id, "worker gave up")
	}},
	{"Cancel", jobs.StatusCancelled, func(ctx context.Context, m *jobs.Manager, id uuid.UUID) (*jobs.Job, error) {
		return m.Cancel(ctx, id)
	}},
}

// TestTransitions drives every method from every status and checks that legal moves write
// exactly one version and illegal ones write nothing at all.
func TestTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, from := range allStatuses {
		for _, method := range transitionMethods {
			t.Run(string(from)+"/"+method.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				job := b.jobIn(t, from, newDocIDs(2)...)
				before := rowText(t, b.pool, job.ID)
				publishedBefore := b.notifier.versions(job.ID)

				got, err := method.call(ctx, b.mgr, job.ID)

				switch {
				case legal[[2]jobs.Status{from, method.to}]:
					require.NoError(t, err)
					require.Equal(t, method.to, got.Status)
					require.Equal(t, job.Version+1, got.Version)
					require.False(t, got.UpdatedAt.Before(job.UpdatedAt))
					require.Equal(t, job.CreatedAt, got.CreatedAt)
					require.Equal(t, method.to == jobs.StatusInProgress || job.StartedAt != nil, got.StartedAt != nil)
					require.Equal(t, method.to.Terminal(), got.FinishedAt != nil)
					if method.to == jobs.StatusFailed {
						require.Equal(t, "worker gave up", got.Error)
					} else {
						require.Empty(t, got.Error)
					}
					reread, err := b.mgr.Get(ctx, job.ID)
					require.NoError(t, err)
					require.Equal(t, got, reread)
					require.Equal(t, append(publishedBefore, got.Version), b.notifier.versions(job.ID))

				case from == jobs.StatusCancelled && method.to == jobs.StatusCancelled:
					require.NoError(t, err, "cancelling a cancelled job is a no-op")
					require.Equal(t, job, got)
					require.Equal(t, before, rowText(t, b.pool, job.ID))
					require.Equal(t, publishedBefore, b.notifier.versions(job.ID))

				default:
					require.Nil(t, got)
					require.ErrorIs(t, err, errs.ErrFailedPrecondition)
					require.ErrorIs(t, err, jobs.ErrInvalidTransition)
					var te *jobs.TransitionError
					require.ErrorAs(t, err, &te)
					require.Equal(t, jobs.TransitionError{JobID: job.ID, From: from, To: method.to}, *te)
					var fpe *errs.FailedPreconditionError
					require.ErrorAs(t, err, &fpe)
					require.Contains(t, fpe.Reason, string(from))
					require.Contains(t, fpe.Reason, string(method.to))
					require.Equal(t, before, rowText(t, b.pool, job.ID), "an illegal transition writes nothing")
					require.Equal(t, publishedBefore, b.notifier.versions(job.ID))
				}
			})
		}
	}
}

func TestTransitionsMissingJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, method := range transitionMethods {
		id := uuid.New()
		_, err := method.call(t.Context(), b.mgr, id)
		require.ErrorIs(t, err, errs.ErrNotFound, method.name)
		var nf *errs.NotFoundError
		require.ErrorAs(t, err, &nf)
		require.Equal(t, errs.NotFoundError{Kind: "job", ID: id.String()}, *nf)
		require.False(t, errors.Is(err, errs.ErrFailedPrecondition))
	}
}

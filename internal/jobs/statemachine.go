package jobs

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// transitions is the job state machine: the only moves any method may make. Terminal statuses
// have no entry. Every Manager method that changes status asks CanTransition (through
// sourcesOf), so this table is the single place that decides.
//
//	pending     -> in_progress | failed | cancelled
//	in_progress -> completed   | failed | cancelled
//	completed, failed, cancelled: terminal (Cancel of a cancelled job is a no-op, not a move)
var transitions = map[Status][]Status{
	StatusPending:    {StatusInProgress, StatusFailed, StatusCancelled},
	StatusInProgress: {StatusCompleted, StatusFailed, StatusCancelled},
}

// CanTransition reports whether a job may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// sourcesOf lists the statuses from which a job may move to to, in lifecycle order. It is the
// status condition of the conditional UPDATE that makes the move.
func sourcesOf(to Status) []Status {
	var out []Status
	for _, from := range allStatuses {
		if CanTransition(from, to) {
			out = append(out, from)
		}
	}
	return out
}

// ErrInvalidTransition matches (errors.Is) every *TransitionError.
var ErrInvalidTransition = errors.New("invalid job transition")

// TransitionError says a job cannot move from its current status to the requested one. It
// matches both ErrInvalidTransition and errs.ErrFailedPrecondition (and errors.As finds an
// *errs.FailedPreconditionError carrying the same message), so the server maps it like any
// other failed precondition.
type TransitionError struct {
	JobID uuid.UUID
	From  Status
	To    Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("job %s cannot move from %s to %s", e.JobID, e.From, e.To)
}

func (e *TransitionError) Unwrap() []error {
	return []error{ErrInvalidTransition, &errs.FailedPreconditionError{Reason: e.Error()}}
}

// acceptsResults reports whether per-document results may be recorded for a job in status s:
// only a running job has a worker reporting, and a finished job's counters are final.
func acceptsResults(s Status) bool { return s == StatusInProgress }

// retryBlocker says why a job cannot be retried, or returns "" if it can: a job that failed,
// was cancelled, or completed with failed documents may be retried; a live one may not.
func retryBlocker(j *Job) string {
	switch {
	case j.Status == StatusFailed, j.Status == StatusCancelled:
		return ""
	case j.Status == StatusCompleted && j.ErrorCount > 0:
		return ""
	case j.Status == StatusCompleted:
		return "job completed without errors: nothing to retry"
	default:
		return "job is " + string(j.Status)
	}
}

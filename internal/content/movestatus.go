package content

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

var qMoveSourceStatus = mustQuery("move_source_status")

// MoveSourceStatus is UpdateSourceStatus for callers that do not need the source back (the
// processing hooks, once per job): it reads no counts, and when the source already has the
// status and error it writes nothing (changed false), so jobs of one source do not queue on its
// row. A move CanTransition does not allow is errs.ErrFailedPrecondition; an unknown source
// errs.ErrNotFound.
func (s *PgStore) MoveSourceStatus(ctx context.Context, p *UpdateSourceStatusParams) (changed bool, err error) {
	id, from, msg, err := statusMove(p)
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		var cur SourceStatus
		var curErr string
		err := s.db.QueryRow(ctx, qMoveSourceStatus, id, string(p.Status), msg, from).Scan(&cur, &curErr, &changed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return false, translate(err, "source", p.ID)
		case err != nil:
			return false, translate(err, "source", p.ID)
		case changed, cur == p.Status && curErr == msg:
			return changed, nil
		case !CanTransition(cur, p.Status):
			return false, errs.FailedPrecondition("source %s: status cannot change from %s to %s", p.ID, cur, p.Status)
		case attempt == 2:
			// Allowed from what the statement saw, yet not written: another writer moved it.
			return false, errs.FailedPrecondition("source %s: status keeps changing under the move to %s; try again", p.ID, p.Status)
		}
	}
}

// statusMove checks a status move's parameters and returns the source id, the statuses the
// source may move from, and the cleaned error note.
func statusMove(p *UpdateSourceStatusParams) (id uuid.UUID, from []string, msg string, err error) {
	if id, err = parseID("id", p.ID); err != nil {
		return uuid.Nil, nil, "", err
	}
	if !p.Status.Valid() {
		return uuid.Nil, nil, "", errs.InvalidArgument("status", "unknown status %q", p.Status)
	}
	return id, statusesInto(p.Status), cleanError(p.Error), nil
}

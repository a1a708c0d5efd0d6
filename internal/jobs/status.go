package jobs

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var qJobGetStatus = mustQuery("job_get_status")

// Status reads the job's status alone: a primary-key read of one column, for a check that needs
// nothing else (a worker's check for a cancel between documents), without decoding the row and
// its document ids.
func (m *Manager) Status(ctx context.Context, id uuid.UUID) (Status, error) {
	return m.store.JobGetStatus(ctx, id)
}

// JobGetStatus implements Store.
func (s *PgStore) JobGetStatus(ctx context.Context, id uuid.UUID) (Status, error) {
	var st string
	err := s.db.QueryRow(ctx, qJobGetStatus, pgx.NamedArgs{"id": id}).Scan(&st)
	return Status(st), translate(err, id)
}

package jobs

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var qJobSourceHasActiveProcess = mustQuery("job_source_has_active_process")

// SourceHasActiveProcessing tells whether the source has a pending or running processing job:
// one index probe, asked whenever one of its processing jobs ends.
func (m *Manager) SourceHasActiveProcessing(ctx context.Context, sourceID uuid.UUID) (bool, error) {
	return m.store.JobSourceHasActiveProcess(ctx, sourceID)
}

// JobSourceHasActiveProcess implements Store.
func (s *PgStore) JobSourceHasActiveProcess(ctx context.Context, sourceID uuid.UUID) (bool, error) {
	var active bool
	err := s.db.QueryRow(ctx, qJobSourceHasActiveProcess, pgx.NamedArgs{"source_id": sourceID}).Scan(&active)
	return active, translate(err, uuid.Nil)
}

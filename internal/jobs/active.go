package jobs

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var qJobsSourcesActiveProcess = mustQuery("jobs_sources_active_process")

// SourcesWithActiveProcessing tells which of the sources have a pending or running processing
// job, in one statement (index probes of jobs_active_process_by_source_idx): the sources of the
// jobs a group commit ended are asked together, to settle those with none.
func (m *Manager) SourcesWithActiveProcessing(ctx context.Context, sourceIDs []uuid.UUID) (map[uuid.UUID]bool, error) {
	return m.store.JobsSourcesActiveProcess(ctx, sourceIDs)
}

// JobsSourcesActiveProcess implements Store.
func (s *PgStore) JobsSourcesActiveProcess(ctx context.Context, sourceIDs []uuid.UUID) (map[uuid.UUID]bool, error) {
	rows, err := s.db.Query(ctx, qJobsSourcesActiveProcess, pgx.NamedArgs{"source_ids": sourceIDs})
	if err != nil {
		return nil, translate(err, uuid.Nil)
	}
	active := make(map[uuid.UUID]bool)
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		active[id] = true
		return nil
	})
	return active, translate(err, uuid.Nil)
}

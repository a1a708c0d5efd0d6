package jobs

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var qJobsSourcesActiveProcess = mustPositional(mustQuery("jobs_sources_active_process"), "source_ids")

// SourcesWithActiveProcessing tells which of the sources have a pending or running processing
// job, in one statement (index probes of jobs_active_process_by_source_idx): the sources of the
// jobs a group commit ended are asked together, to settle those with none.
func (m *Manager) SourcesWithActiveProcessing(ctx context.Context, sourceIDs []uuid.UUID) (map[uuid.UUID]bool, error) {
	return m.store.JobsSourcesActiveProcess(ctx, sourceIDs)
}

// JobsSourcesActiveProcess implements Store. Every group of job ends asks it, so it runs with a
// generic plan (queueGroupSettings): planned afresh each time, it cost five times its run.
func (s *PgStore) JobsSourcesActiveProcess(ctx context.Context, sourceIDs []uuid.UUID) (map[uuid.UUID]bool, error) {
	b := &pgx.Batch{}
	lead := s.queueGroupSettings(b, false)
	qJobsSourcesActiveProcess.queue(b, pgx.NamedArgs{"source_ids": binaryUUIDs(sourceIDs)})
	active := make(map[uuid.UUID]bool)
	err := s.pipeline(ctx, b, func(br pgx.BatchResults) error {
		for range lead {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var id binaryUUID
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			active[uuid.UUID(id)] = true
			return nil
		})
		return err
	})
	return active, translate(err, uuid.Nil)
}

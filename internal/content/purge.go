package content

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var (
	qListVectorPurges  = mustQuery("list_vector_purges")
	qFinishVectorPurge = mustQuery("finish_vector_purge")
)

// PendingPurges lists up to max deleted sources whose vectors are still to be purged.
func (s *PgStore) PendingPurges(ctx context.Context, max int) ([]string, error) {
	rows, err := s.db.Query(ctx, qListVectorPurges, max)
	if err != nil {
		return nil, translate(err, "source", "")
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id uuid.UUID
		var attempts int
		err := r.Scan(&id, &attempts)
		return id.String(), err
	})
	return ids, translate(err, "source", "")
}

// FinishPurge records a purge attempt: a nil purgeErr removes the source from the pending
// purges, any other records it for the next attempt.
func (s *PgStore) FinishPurge(ctx context.Context, sourceID string, purgeErr error) error {
	id, err := uuid.Parse(sourceID)
	if err != nil {
		return err
	}
	msg := ""
	if purgeErr != nil {
		msg = purgeErr.Error()
		if msg == "" {
			msg = "purge failed"
		}
	}
	rows, err := s.db.Query(ctx, qFinishVectorPurge, id, msg)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	return translate(err, "source", sourceID)
}

package content

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var (
	qGetIndexState = mustQuery("get_index_state")
	qPutIndexState = mustQuery("put_index_state")
)

// IndexState is what a document's vectors were last built from. Processing skips a document
// whose content hash and settings fingerprint (chunker + embedder) both match: nothing would change.
type IndexState struct {
	DocumentID  string
	ContentHash string
	Fingerprint string
	ChunkCount  int64
	IndexedAt   time.Time
}

// GetIndexState returns the document's index state; ok is false if it was never indexed.
func (s *PgStore) GetIndexState(ctx context.Context, documentID string) (st IndexState, ok bool, err error) {
	id, err := uuid.Parse(documentID)
	if err != nil {
		return st, false, err
	}
	err = s.db.QueryRow(ctx, qGetIndexState, id).Scan(&st.DocumentID, &st.ContentHash, &st.Fingerprint, &st.ChunkCount, &st.IndexedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return IndexState{}, false, nil
	}
	if err != nil {
		return IndexState{}, false, translate(err, "document", documentID)
	}
	return st, true, nil
}

// PutIndexState records that the document's vectors were built from st. It reports false when
// the document was deleted meanwhile: the caller then removes the vectors it just wrote.
func (s *PgStore) PutIndexState(ctx context.Context, st IndexState) (bool, error) {
	id, err := uuid.Parse(st.DocumentID)
	if err != nil {
		return false, err
	}
	rows, err := s.db.Query(ctx, qPutIndexState, id, st.ContentHash, st.Fingerprint, st.ChunkCount)
	if err != nil {
		return false, translate(err, "document", st.DocumentID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, translate(err, "document", st.DocumentID)
	}
	return rows.CommandTag().RowsAffected() > 0, nil
}

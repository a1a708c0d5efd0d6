package content

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

var (
	qGetIndexState  = mustQuery("get_index_state")
	qPutIndexState  = mustQuery("put_index_state")
	qGetIndexStates = mustQuery("get_index_states")
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
	written, _, err := s.PutIndexStateForJob(ctx, st, uuid.Nil)
	return written, err
}

// PutIndexStateForJob is PutIndexState that also returns, read in the same statement, the status
// of the job jobID the document was processed for ("" when the job is gone or jobID is
// uuid.Nil): a worker checks for a cancel between documents without a statement of its own.
func (s *PgStore) PutIndexStateForJob(ctx context.Context, st IndexState, jobID uuid.UUID) (written bool, jobStatus string, err error) {
	id, err := uuid.Parse(st.DocumentID)
	if err != nil {
		return false, "", err
	}
	job := uuid.NullUUID{UUID: jobID, Valid: jobID != uuid.Nil}
	var n int64
	var status *string
	if err := s.db.QueryRow(ctx, qPutIndexState, id, st.ContentHash, st.Fingerprint, st.ChunkCount, job).Scan(&n, &status); err != nil {
		return false, "", translate(err, "document", st.DocumentID)
	}
	if status != nil {
		jobStatus = *status
	}
	return n > 0, jobStatus, nil
}

// GetIndexStates returns the index states of the documents among ids that were ever indexed, by
// document id: one statement for a group of documents instead of one each.
func (s *PgStore) GetIndexStates(ctx context.Context, ids []uuid.UUID) (map[string]IndexState, error) {
	out := make(map[string]IndexState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, qGetIndexStates, ids)
	if err != nil {
		return nil, translate(err, "document", "")
	}
	var st IndexState
	_, err = pgx.ForEachRow(rows, []any{&st.DocumentID, &st.ContentHash, &st.Fingerprint, &st.ChunkCount, &st.IndexedAt}, func() error {
		out[st.DocumentID] = st
		return nil
	})
	if err != nil {
		return nil, translate(err, "document", "")
	}
	return out, nil
}

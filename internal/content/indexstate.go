package content

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

var (
	qGetDocumentsWithStates = mustQuery("get_documents_with_states")
	qGetIndexState          = mustQuery("get_index_state")
	qPutIndexStates         = mustQuery("put_index_states")
	qKeyedReads             = mustQuery("keyed_reads")
)

// keyed runs one of a worker's group statements after keyed_reads.sql, in one round trip and
// one implicit transaction. Inside a transaction of the caller's, whose later statements the
// setting would reach, the statement runs alone. done must be called after the rows are read.
func (s *PgStore) keyed(ctx context.Context, sql string, args ...any) (rows pgx.Rows, done func() error, err error) {
	if _, inTx := s.db.(pgx.Tx); inTx {
		rows, err := s.db.Query(ctx, sql, args...)
		return rows, func() error { return nil }, err
	}
	b := &pgx.Batch{}
	b.Queue(qKeyedReads)
	b.Queue(sql, args...)
	br := s.db.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, nil, err
	}
	rows, err = br.Query()
	if err != nil {
		_ = br.Close()
		return nil, nil, err
	}
	return rows, br.Close, nil
}

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
	err = s.db.QueryRow(ctx, qGetIndexState, pgUUID(id)).Scan(&st.DocumentID, &st.ContentHash, &st.Fingerprint, &st.ChunkCount, &st.IndexedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return IndexState{}, false, nil
	}
	if err != nil {
		return IndexState{}, false, translate(err, "document", documentID)
	}
	return st, true, nil
}

// PutIndexState records that the document's vectors were built from st. It reports false when
// the document was deleted or its content changed meanwhile (see PutIndexStates).
func (s *PgStore) PutIndexState(ctx context.Context, st IndexState) (bool, error) {
	written, _, err := s.PutIndexStates(ctx, []IndexState{st}, uuid.Nil)
	return written[st.DocumentID], err
}

// PutIndexStates records, in one statement, that the documents' vectors were built from states
// (one per document; a document listed twice keeps its last state). written holds the ids of
// the documents recorded. One missing was deleted meanwhile (the caller removes the vectors it
// just wrote) or no longer has the state's content hash: new content arrived while the caller
// worked, and its vectors may have overwritten those built from the new content by another
// worker, so the caller indexes the document again from its current content. jobStatus is the status of the job jobID the documents were processed
// for, read in the same statement ("" when the job is gone or jobID is uuid.Nil): a worker
// checks for a cancel between documents without a statement of its own. Outside a transaction
// of the caller's it commits asynchronously (no WAL flush waited for; see put_index_states.sql).
func (s *PgStore) PutIndexStates(ctx context.Context, states []IndexState, jobID uuid.UUID) (written map[string]bool, jobStatus string, err error) {
	last := make(map[uuid.UUID]int, len(states))
	for i, st := range states {
		id, err := uuid.Parse(st.DocumentID)
		if err != nil {
			return nil, "", err
		}
		last[id] = i
	}
	ids := make([]pgtype.UUID, 0, len(last))
	hashes := make([]string, 0, len(last))
	fingerprints := make([]string, 0, len(last))
	counts := make([]int64, 0, len(last))
	for id, i := range last {
		ids = append(ids, pgUUID(id))
		hashes = append(hashes, states[i].ContentHash)
		fingerprints = append(fingerprints, states[i].Fingerprint)
		counts = append(counts, states[i].ChunkCount)
	}
	job := pgtype.UUID{Bytes: jobID, Valid: jobID != uuid.Nil}
	// Committed asynchronously (see put_index_states.sql) when the store is not in a
	// transaction of the caller's: one statement, no WAL flush waited for.
	_, inTx := s.db.(pgx.Tx)
	var done []pgtype.UUID
	var status, async *string
	rows, closeBatch, err := s.keyed(ctx, qPutIndexStates, ids, hashes, fingerprints, counts, job, !inTx)
	if err != nil {
		return nil, "", translate(err, "document", "")
	}
	if rows.Next() {
		err = rows.Scan(&done, &status, &async)
	} else if err = rows.Err(); err == nil {
		err = pgx.ErrNoRows
	}
	rows.Close()
	if cerr := closeBatch(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, "", translate(err, "document", "")
	}
	written = make(map[string]bool, len(done))
	for _, id := range done {
		written[uuid.UUID(id.Bytes).String()] = true
	}
	if status != nil {
		jobStatus = *status
	}
	return written, jobStatus, nil
}

// GetDocumentsWithStates reads, in one statement, the documents among ids that exist and the
// index states of those ever indexed (by document id): what a worker reads for a group of
// documents it is about to process. It stops after the document whose content brings the group
// to maxBytes (0: no limit; the first document is always read) and returns how many of the
// leading ids the read covered: a document among them missing from the result was deleted, and
// ids[covered:] are left for another call.
func (s *PgStore) GetDocumentsWithStates(ctx context.Context, ids []uuid.UUID, maxBytes int64) (docs []*Document, states map[string]IndexState, covered int, err error) {
	if len(ids) > MaxIDsPerGet {
		return nil, nil, 0, errs.InvalidArgument("ids", "%d ids, more than %d", len(ids), MaxIDsPerGet)
	}
	if maxBytes < 0 {
		return nil, nil, 0, errs.InvalidArgument("max_bytes", "must not be negative, got %d", maxBytes)
	}
	if maxBytes == 0 {
		maxBytes = math.MaxInt64
	}
	states = make(map[string]IndexState, len(ids))
	covered = len(ids)
	if len(ids) == 0 {
		return nil, states, covered, nil
	}
	rows, closeBatch, err := s.keyed(ctx, qGetDocumentsWithStates, pgUUIDs(ids), maxBytes)
	if err != nil {
		return nil, nil, 0, translate(err, "document", "")
	}
	defer func() {
		rows.Close()
		if cerr := closeBatch(); cerr != nil && err == nil {
			docs, states, covered, err = nil, nil, 0, translate(cerr, "document", "")
		}
	}()
	for rows.Next() {
		var d Document
		var hash, fingerprint pgtype.Text
		var chunks pgtype.Int8
		var at pgtype.Timestamptz
		var ord, upto int64
		if err := rows.Scan(append(summaryDest(&d.DocumentSummary), &d.Content, &hash, &fingerprint, &chunks, &at, &ord, &upto)...); err != nil {
			return nil, nil, 0, translate(err, "document", "")
		}
		tidySummary(&d.DocumentSummary)
		docs = append(docs, &d)
		if hash.Valid {
			states[d.ID] = IndexState{DocumentID: d.ID, ContentHash: hash.String, Fingerprint: fingerprint.String, ChunkCount: chunks.Int64, IndexedAt: at.Time}
		}
		if upto >= maxBytes {
			covered = int(ord) // the last row: the budget is spent
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, translate(err, "document", "")
	}
	return docs, states, covered, nil
}

package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pipeline-dev/pipeline/internal/db"
	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/pagetoken"
)

// Executor is what PgStore runs queries on: a *pgxpool.Pool, or a pgx.Tx when the caller wants
// content writes in its own transaction (UpsertDocuments then uses a savepoint).
type Executor interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// PgStore is the Postgres Store.
type PgStore struct {
	db       Executor
	maxBytes int64
}

var _ Store = (*PgStore)(nil)

// Option configures a PgStore.
type Option func(*PgStore)

// WithMaxDocumentBytes sets the largest document content accepted, in bytes.
// Defaults to DefaultMaxDocumentBytes; n <= 0 keeps the default.
func WithMaxDocumentBytes(n int64) Option {
	return func(s *PgStore) {
		if n > 0 {
			s.maxBytes = n
		}
	}
}

// NewPgStore returns a Store on db.
func NewPgStore(db Executor, opts ...Option) *PgStore {
	s := &PgStore{db: db, maxBytes: DefaultMaxDocumentBytes}
	for _, o := range opts {
		o(s)
	}
	return s
}

// CreateSource implements Store.
func (s *PgStore) CreateSource(ctx context.Context, p *CreateSourceParams) (*Source, error) {
	in, err := prepareSource(p)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	src, err := scanSource(s.db.QueryRow(ctx, qCreateSource,
		id, in.Name, in.URL, string(in.Crawler), in.CrawlOptions, string(SourceStatusPending)))
	return src, translate(err, "source", id.String())
}

// GetSource implements Store.
func (s *PgStore) GetSource(ctx context.Context, p *GetSourceParams) (*Source, error) {
	id, err := parseID("id", p.ID)
	if err != nil {
		return nil, err
	}
	src, err := scanSource(s.db.QueryRow(ctx, qGetSource, id))
	return src, translate(err, "source", p.ID)
}

// ListSources implements Store.
func (s *PgStore) ListSources(ctx context.Context, p *ListSourcesParams) ([]*Source, string, error) {
	if p.Status != "" && !p.Status.Valid() {
		return nil, "", errs.InvalidArgument("status", "unknown status %q", p.Status)
	}
	size, err := pageSize(p.PageSize)
	if err != nil {
		return nil, "", err
	}
	filter := "sources?status=" + string(p.Status)
	afterTime, afterID, err := decodeCursor(p.PageToken, filter)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, qListSources, string(p.Status), afterTime, afterID, size+1)
	if err != nil {
		return nil, "", translate(err, "source", "")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Source, error) { return scanSource(r) })
	if err != nil {
		return nil, "", translate(err, "source", "")
	}
	next := ""
	if len(list) > size {
		list = list[:size]
		last := list[size-1]
		next = pagetoken.Encode(pagetoken.Cursor{CreatedAt: last.CreatedAt, ID: uuid.MustParse(last.ID)}, filter)
	}
	return list, next, nil
}

// DeleteSource implements Store.
func (s *PgStore) DeleteSource(ctx context.Context, p *DeleteSourceParams) (*Source, error) {
	id, err := parseID("id", p.ID)
	if err != nil {
		return nil, err
	}
	src, err := scanSource(s.db.QueryRow(ctx, qDeleteSource, id))
	return src, translate(err, "source", p.ID)
}

// UpdateSourceStatus implements Store.
func (s *PgStore) UpdateSourceStatus(ctx context.Context, p *UpdateSourceStatusParams) (*Source, error) {
	id, from, msg, err := statusMove(p)
	if err != nil {
		return nil, err
	}
	// The UPDATE checks and writes in one statement. When it matches nothing, read the status to
	// say why; if that status would allow the move, another writer changed it in between, so try
	// again a couple of times rather than report a transition that did not happen.
	for attempt := 0; ; attempt++ {
		src, err := scanSource(s.db.QueryRow(ctx, qUpdateSourceStatus, id, string(p.Status), msg, from))
		if !errors.Is(err, pgx.ErrNoRows) {
			return src, translate(err, "source", p.ID)
		}
		var cur SourceStatus
		if err := s.db.QueryRow(ctx, qGetSourceStatus, id).Scan(&cur); err != nil {
			return nil, translate(err, "source", p.ID)
		}
		if !CanTransition(cur, p.Status) {
			return nil, errs.FailedPrecondition("source %s: status cannot change from %s to %s", p.ID, cur, p.Status)
		}
		if attempt == 2 {
			return nil, errs.FailedPrecondition("source %s: status keeps changing under the update to %s; try again", p.ID, p.Status)
		}
	}
}

// UpsertDocuments implements Store.
func (s *PgStore) UpsertDocuments(ctx context.Context, p *UpsertDocumentsParams) ([]UpsertedDocument, error) {
	sid, err := parseID("source_id", p.SourceID)
	if err != nil {
		return nil, err
	}
	docs, err := prepareDocuments(p.Documents, s.maxBytes)
	if err != nil {
		return nil, err
	}
	// Write in uri order so that concurrent batches on one source lock rows in the same order
	// and cannot deadlock; the result keeps the input order.
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(docs[a].URI, docs[b].URI) })

	out := make([]UpsertedDocument, len(docs))
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, qLockSource, pgUUID(sid)).Scan(&one); err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		// One statement for the call's documents: arrays in uri order, new ids made in that
		// order (time-ordered, like the rows' creation).
		byURI := make(map[string]int, len(docs))
		ids := make([]pgtype.UUID, len(docs))
		uris := make([]string, len(docs))
		titles := make([]string, len(docs))
		types := make([]string, len(docs))
		contents := make([]string, len(docs))
		hashes := make([]string, len(docs))
		sizes := make([]int64, len(docs))
		metadata := make([]string, len(docs))
		for k, i := range order {
			d := docs[i]
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			md, err := json.Marshal(d.Metadata)
			if err != nil {
				return err
			}
			byURI[d.URI] = i
			ids[k], uris[k], titles[k], types[k] = pgUUID(id), d.URI, d.Title, string(d.ContentType)
			contents[k], hashes[k], sizes[k], metadata[k] = d.Content, d.hash, d.size, string(md)
		}
		rows, err := tx.Query(ctx, qUpsertDocuments, pgUUID(sid), ids, uris, titles, types, hashes, sizes, metadata, db.Texts(contents))
		if err != nil {
			return err
		}
		var sum DocumentSummary
		var created bool
		dest := append(summaryDest(&sum), &created)
		_, err = pgx.ForEachRow(rows, dest, func() error {
			i, ok := byURI[sum.URI]
			if !ok {
				return fmt.Errorf("content: an upsert returned a document not asked for (%q)", sum.URI)
			}
			doc := &Document{DocumentSummary: sum, Content: docs[i].Content}
			tidySummary(&doc.DocumentSummary)
			out[i] = UpsertedDocument{Document: doc, Created: created, Changed: true}
			return nil
		})
		if err != nil {
			return err
		}
		// The rest had nothing new: read them as they are.
		var unchanged []string
		for _, i := range order {
			if out[i].Document == nil {
				unchanged = append(unchanged, docs[i].URI)
			}
		}
		if len(unchanged) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, qGetDocumentsByURIs, pgUUID(sid), unchanged)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*DocumentSummary, error) { return scanSummary(r) })
		if err != nil {
			return err
		}
		for _, sum := range found {
			i := byURI[sum.URI]
			out[i] = UpsertedDocument{Document: &Document{DocumentSummary: *sum, Content: docs[i].Content}}
		}
		if len(found) != len(unchanged) {
			return errors.New("content: a document left unchanged by an upsert is missing")
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "source", p.SourceID)
	}
	return out, nil
}

// GetDocument implements Store.
func (s *PgStore) GetDocument(ctx context.Context, p *GetDocumentParams) (*Document, error) {
	id, err := parseID("id", p.ID)
	if err != nil {
		return nil, err
	}
	doc, err := scanDocument(s.db.QueryRow(ctx, qGetDocument, id))
	return doc, translate(err, "document", p.ID)
}

// ListDocuments implements Store.
func (s *PgStore) ListDocuments(ctx context.Context, p *ListDocumentsParams) ([]*DocumentSummary, string, error) {
	sid, err := parseID("source_id", p.SourceID)
	if err != nil {
		return nil, "", err
	}
	size, err := pageSize(p.PageSize)
	if err != nil {
		return nil, "", err
	}
	filter := "documents?source_id=" + sid.String()
	afterTime, afterID, err := decodeCursor(p.PageToken, filter)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, qListDocuments, sid, afterTime, afterID, size+1)
	if err != nil {
		return nil, "", translate(err, "source", p.SourceID)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*DocumentSummary, error) { return scanSummary(r) })
	if err != nil {
		return nil, "", translate(err, "source", p.SourceID)
	}
	if len(list) == 0 {
		// An empty page needs one more look to tell an empty source from a missing one.
		var exists bool
		if err := s.db.QueryRow(ctx, qSourceExists, sid).Scan(&exists); err != nil {
			return nil, "", translate(err, "source", p.SourceID)
		}
		if !exists {
			return nil, "", errs.NotFound("source", p.SourceID)
		}
	}
	next := ""
	if len(list) > size {
		list = list[:size]
		last := list[size-1]
		next = pagetoken.Encode(pagetoken.Cursor{CreatedAt: last.CreatedAt, ID: uuid.MustParse(last.ID)}, filter)
	}
	return list, next, nil
}

// GetDocumentsByIDs implements Store.
func (s *PgStore) GetDocumentsByIDs(ctx context.Context, p *GetDocumentsByIDsParams) ([]*Document, error) {
	if len(p.IDs) > MaxIDsPerGet {
		return nil, errs.InvalidArgument("ids", "%d ids, more than %d", len(p.IDs), MaxIDsPerGet)
	}
	ids := make([]uuid.UUID, 0, len(p.IDs))
	for i, raw := range p.IDs {
		id, err := uuid.Parse(raw)
		if err != nil {
			return nil, errs.InvalidArgument("ids", "entry %d: %q is not a UUID", i, raw)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, qGetDocumentsByIDs, pgUUIDs(ids))
	if err != nil {
		return nil, translate(err, "document", "")
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, translate(err, "document", "")
	}
	byID := make(map[string]*Document, len(found))
	for _, d := range found {
		byID[d.ID] = d
	}
	out := make([]*Document, 0, len(found))
	for _, id := range ids {
		if d, ok := byID[id.String()]; ok {
			out = append(out, d)
			delete(byID, id.String()) // an id asked for twice comes back once
		}
	}
	return out, nil
}

// decodeCursor turns a page token into the keyset position to read after. The first page starts
// after ('infinity', max uuid), which every row precedes.
func decodeCursor(token, filter string) (pgtype.Timestamptz, uuid.UUID, error) {
	c, ok, err := pagetoken.Decode(token, filter)
	if err != nil {
		return pgtype.Timestamptz{}, uuid.UUID{}, err
	}
	if !ok {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, uuid.Max, nil
	}
	return pgtype.Timestamptz{Time: c.CreatedAt, Valid: true}, c.ID, nil
}

func scanSource(row pgx.Row) (*Source, error) {
	var s Source
	var crawlJob uuid.NullUUID
	var crawlAt pgtype.Timestamptz
	if err := row.Scan(&s.ID, &s.Name, &s.URL, &s.Crawler, &s.CrawlOptions, &s.Status, &s.Error,
		&s.CreatedAt, &s.UpdatedAt, &s.DocumentCount, &s.ChunkCount, &crawlJob, &crawlAt); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	if crawlJob.Valid && crawlAt.Valid {
		s.LastCrawlJobID, s.LastCrawlAt = crawlJob.UUID.String(), crawlAt.Time.UTC()
	}
	return &s, nil
}

// summaryDest lists the scan targets for the summary columns, in the order the queries select them.
func summaryDest(d *DocumentSummary) []any {
	return []any{&d.ID, &d.SourceID, &d.URI, &d.Title, &d.ContentType, &d.ContentHash, &d.SizeBytes,
		&d.Metadata, &d.CreatedAt, &d.UpdatedAt}
}

// tidySummary puts times in UTC and gives every document a non-nil metadata map.
func tidySummary(d *DocumentSummary) {
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
}

func scanSummary(row pgx.Row) (*DocumentSummary, error) {
	var d DocumentSummary
	if err := row.Scan(summaryDest(&d)...); err != nil {
		return nil, err
	}
	tidySummary(&d)
	return &d, nil
}

func scanDocument(row pgx.Row) (*Document, error) {
	var d Document
	if err := row.Scan(append(summaryDest(&d.DocumentSummary), &d.Content)...); err != nil {
		return nil, err
	}
	tidySummary(&d.DocumentSummary)
	return &d, nil
}

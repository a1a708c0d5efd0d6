// Package milvus is the production vector.Store: chunks in one Milvus collection, searched by
// cosine similarity through an HNSW index. It owns the collection's schema, the filter
// expressions and the mapping of Milvus failures onto errs (unreachable, timed out, rate limited:
// errs.Transient). It speaks to Milvus through github.com/milvus-io/milvus-sdk-go/v2 (see
// docs/decisions/0003-milvus-sdk.md) and knows nothing about jobs, queues or embedders.
package milvus

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	grpcretry "github.com/grpc-ecosystem/go-grpc-middleware/retry"
	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// DefaultCollection is the collection a store uses unless told otherwise.
const DefaultCollection = "pipeline_chunks"

// Consistency is the Milvus consistency level of searches and counts.
type Consistency string

// The levels Milvus offers. Only Strong guarantees that a search sees a write that returned
// before it (vector.Store promises that); the others trade it for latency.
const (
	ConsistencyStrong     Consistency = "Strong"
	ConsistencySession    Consistency = "Session"
	ConsistencyBounded    Consistency = "Bounded"
	ConsistencyEventually Consistency = "Eventually"
)

func (c Consistency) level() (entity.ConsistencyLevel, bool) {
	switch c {
	case ConsistencyStrong:
		return entity.ClStrong, true
	case ConsistencySession:
		return entity.ClSession, true
	case ConsistencyBounded:
		return entity.ClBounded, true
	case ConsistencyEventually:
		return entity.ClEventually, true
	}
	return 0, false
}

// Config says where the Milvus server is and which collection holds the chunks.
type Config struct {
	// Address is host:port of the Milvus proxy (or an http(s):// URI; https turns TLS on and
	// defaults the port to 443). Required.
	Address string
	// Username and Password authenticate with Milvus's built-in users. Defaults to none.
	Username string
	Password string
	// APIKey is a token (Zilliz Cloud API key, or "user:password"), sent instead of Username and
	// Password. Defaults to none.
	APIKey string
	// Database is the Milvus database. Defaults to "" (the server's "default").
	Database string
	// Collection holds the chunks; it is created on Open when missing. Defaults to
	// DefaultCollection.
	Collection string
	// Dimension is the vectors' length. An existing collection with another dimension makes Open
	// fail. Required.
	Dimension int
	// TLS encrypts the connection, verifying the server against the system's roots. Defaults to
	// false.
	TLS bool
	// TLSCAFile is a PEM file of the CAs to verify the server with instead of the system's roots;
	// setting it turns TLS on. Defaults to none.
	TLSCAFile string
	// Consistency of searches and counts, and of the collection when Open creates it. Defaults
	// to ConsistencyStrong: a search sees every write that returned before it.
	Consistency Consistency
	// ConnectTimeout bounds connecting to Milvus in Open (when ctx allows longer). Defaults to 10s.
	ConnectTimeout time.Duration
	// MaxAttempts is how often one call is tried when Milvus answers Unavailable, ResourceExhausted
	// or "rate limited" (backoff 180 ms, 540 ms, 1.6 s, ...) before the store gives up with a
	// transient error; callers retry those with their own backoff. Defaults to 3.
	MaxAttempts int
}

// WithDefaults fills in every field left zero that has a default.
func (c Config) WithDefaults() Config {
	c.Collection = cmp.Or(c.Collection, DefaultCollection)
	c.Consistency = cmp.Or(c.Consistency, ConsistencyStrong)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, 10*time.Second)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 3)
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Address == "":
		return errs.InvalidArgument("milvus_address", "is required")
	case c.Collection == "":
		return errs.InvalidArgument("milvus_collection", "is required")
	case c.Dimension <= 0 || c.Dimension > maxDimension:
		return errs.InvalidArgument("milvus_dimension", "must be 1 to %d, got %d", maxDimension, c.Dimension)
	case c.APIKey != "" && (c.Username != "" || c.Password != ""):
		return errs.InvalidArgument("milvus_api_key", "use either an API key or a username and password, not both")
	case c.ConnectTimeout < 0:
		return errs.InvalidArgument("milvus_connect_timeout", "must not be negative")
	case c.MaxAttempts < 1:
		return errs.InvalidArgument("milvus_max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	if _, ok := c.Consistency.level(); !ok {
		return errs.InvalidArgument("milvus_consistency", "must be Strong, Session, Bounded or Eventually, got %q", c.Consistency)
	}
	return nil
}

// Field names of the collection. They are the schema: renaming one orphans existing collections.
const (
	fieldID          = "id"
	fieldSourceID    = "source_id"
	fieldDocumentID  = "document_id"
	fieldChunkIndex  = "chunk_index"
	fieldText        = "text"
	fieldTitle       = "title"
	fieldURI         = "uri"
	fieldHeadingPath = "heading_path"
	fieldStartOffset = "start_offset"
	fieldEndOffset   = "end_offset"
	fieldVector      = "vector"
)

const (
	// maxIDLength bounds id, source_id and document_id (bytes). Ids are "<uuid>:<index>"; a
	// longer one is refused rather than cut, since a cut id could collide with another.
	maxIDLength = 128
	// maxTextLength is Milvus's VarChar ceiling (bytes). Longer text, title, uri or heading path
	// is cut at a UTF-8 boundary: chunks are far shorter, and a cut field beats a failed document.
	maxTextLength = 65535
	// maxDimension is Milvus's limit for a float vector.
	maxDimension = 32768
	// maxTopK is Milvus's limit for one search; a larger topK is lowered to it.
	maxTopK = 16384
	// maxBatchBytes bounds one Upsert request, well under the server's default 64 MiB message
	// limit; a bigger call is sent in several requests.
	maxBatchBytes = 8 << 20
	// HNSW build parameters: M 16 and efConstruction 200 are the usual recall/size balance for
	// embedding dimensions in the hundreds.
	hnswM              = 16
	hnswEfConstruction = 200
	// minEf is the smallest HNSW search breadth; ef is raised to topK when that is larger.
	minEf = 64
)

// outputFields are returned with each hit; the vector stays on the server.
var outputFields = []string{fieldSourceID, fieldDocumentID, fieldChunkIndex, fieldText, fieldTitle,
	fieldURI, fieldHeadingPath, fieldStartOffset, fieldEndOffset}

// Store is a vector.Store on one Milvus collection. It is safe for concurrent use.
type Store struct {
	c           client.Client
	collection  string
	dim         int
	consistency entity.ConsistencyLevel
	metric      entity.MetricType // of the collection's index: COSINE, or IP on normalised vectors
	hnsw        bool              // whether searches pass ef

	closeOnce sync.Once
	closeErr  error
}

var _ vector.Store = (*Store)(nil)

// Open connects to Milvus and makes sure the collection exists with this store's schema, has its
// vector index and is loaded; it creates whatever is missing. A collection of another dimension,
// or one this package did not make, is an error wrapping errs.ErrFailedPrecondition. Failing to
// reach Milvus is a transient error.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := cfg.Consistency.level()
	sdkCfg, err := cfg.sdkConfig()
	if err != nil {
		return nil, err
	}

	dialCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	c, err := client.NewClient(dialCtx, sdkCfg)
	cancel()
	if err != nil {
		return nil, wrapErr("connect to "+cfg.Address, err)
	}
	s := &Store{c: c, collection: cfg.Collection, dim: cfg.Dimension, consistency: level}
	if err := s.prepare(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return s, nil
}

func (cfg Config) sdkConfig() (client.Config, error) {
	dialOpts := append(slices.Clone(client.DefaultGrpcOpts),
		// The SDK's own retry would try Unavailable six times over about 22 s; callers retry
		// transient errors themselves, so keep the SDK's short.
		grpc.WithDefaultCallOptions(grpcretry.WithMax(uint(cfg.MaxAttempts))),
		// Outermost, so it sees the answer after the SDK's retries.
		grpc.WithChainUnaryInterceptor(statusInterceptor),
	)
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return client.Config{}, errs.InvalidArgument("milvus_tls_ca_file", "%v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return client.Config{}, errs.InvalidArgument("milvus_tls_ca_file", "no PEM certificate in %s", cfg.TLSCAFile)
		}
		// Comes after the SDK's own credentials option, so it wins.
		dialOpts = append(dialOpts, grpc.WithTransportCredentials(
			credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})))
	}
	return client.Config{
		Address:       cfg.Address,
		Username:      cfg.Username,
		Password:      cfg.Password,
		APIKey:        cfg.APIKey,
		DBName:        cfg.Database,
		EnableTLSAuth: cfg.TLS || cfg.TLSCAFile != "",
		DialOptions:   dialOpts,
		// The SDK's Connect call leaks the gRPC connection when it fails (a wrong password, say):
		// NewClient returns the error without closing it. Skipping it changes nothing else for a
		// Milvus >= 2.3 (it only switches features off on servers without Connect); the first
		// call in prepare checks the connection and the credentials instead, and Open closes the
		// client when that fails.
		DisableConn: true,
		RetryRateLimit: &client.RetryRateLimitOption{
			MaxRetry:   uint(cfg.MaxAttempts),
			MaxBackoff: 3 * time.Second,
		},
	}, nil
}

// schema is the collection this store creates.
func schema(collection string, dim int) *entity.Schema {
	varchar := func(name string, maxLen int64) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeVarChar).WithMaxLength(maxLen)
	}
	int64Field := func(name string) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeInt64)
	}
	return entity.NewSchema().
		WithName(collection).
		WithDescription("pipeline chunks and their embeddings").
		WithField(varchar(fieldID, maxIDLength).WithIsPrimaryKey(true)).
		WithField(varchar(fieldSourceID, maxIDLength)).
		WithField(varchar(fieldDocumentID, maxIDLength)).
		WithField(int64Field(fieldChunkIndex)).
		WithField(varchar(fieldText, maxTextLength)).
		WithField(varchar(fieldTitle, maxTextLength)).
		WithField(varchar(fieldURI, maxTextLength)).
		WithField(varchar(fieldHeadingPath, maxTextLength)).
		WithField(int64Field(fieldStartOffset)).
		WithField(int64Field(fieldEndOffset)).
		WithField(entity.NewField().WithName(fieldVector).WithDataType(entity.FieldTypeFloatVector).WithDim(int64(dim)))
}

// prepare creates the collection and its index when missing, checks them, and loads the
// collection.
func (s *Store) prepare(ctx context.Context) error {
	has, err := s.c.HasCollection(ctx, s.collection)
	if err != nil {
		return wrapErr("check collection "+s.collection, err)
	}
	if !has {
		err := s.c.CreateCollection(ctx, schema(s.collection, s.dim), 1, client.WithConsistencyLevel(s.consistency))
		if err != nil {
			// Another process may have created it in the meantime; then go on with theirs.
			if has, herr := s.c.HasCollection(ctx, s.collection); herr != nil || !has {
				return wrapErr("create collection "+s.collection, err)
			}
		}
	}

	coll, err := s.c.DescribeCollection(ctx, s.collection)
	if err != nil {
		return wrapErr("describe collection "+s.collection, err)
	}
	if err := checkSchema(s.collection, coll.Schema, s.dim); err != nil {
		return err
	}

	indexes, err := s.c.DescribeIndex(ctx, s.collection, fieldVector)
	if isIndexNotFound(err) || (err == nil && len(indexes) == 0) {
		idx, ierr := entity.NewIndexHNSW(entity.COSINE, hnswM, hnswEfConstruction)
		if ierr != nil {
			return fmt.Errorf("milvus: %w", ierr)
		}
		// Synchronous: on a collection this store just made the index is ready at once.
		if err := s.c.CreateIndex(ctx, s.collection, fieldVector, idx, false); err != nil {
			return wrapErr("create index on "+s.collection, err)
		}
		indexes, err = s.c.DescribeIndex(ctx, s.collection, fieldVector)
	}
	if err != nil {
		return wrapErr("describe index of "+s.collection, err)
	}
	if len(indexes) == 0 {
		return wrapErr("describe index of "+s.collection, errors.New("no index on the vector field after creating one"))
	}
	params := indexes[0].Params()
	switch metric := entity.MetricType(params["metric_type"]); metric {
	case entity.COSINE, entity.IP: // IP equals cosine on the embedders' normalised vectors.
		s.metric = metric
	default:
		return &SchemaError{Collection: s.collection, Reason: fmt.Sprintf(
			"its vector index uses metric %q; the store needs COSINE (or IP)", metric)}
	}
	s.hnsw = params["index_type"] == string(entity.HNSW)

	return s.load(ctx)
}

// load asks Milvus to load the collection (a no-op when loaded) and waits for it, polling at
// once and then with growing pauses: the SDK's synchronous load waits 200 ms before its first look.
func (s *Store) load(ctx context.Context) error {
	if err := s.c.LoadCollection(ctx, s.collection, true); err != nil {
		return wrapErr("load collection "+s.collection, err)
	}
	pause := 10 * time.Millisecond
	for {
		progress, err := s.c.GetLoadingProgress(ctx, s.collection, nil)
		if err != nil {
			return wrapErr("load collection "+s.collection, err)
		}
		if progress >= 100 {
			return nil
		}
		select {
		case <-ctx.Done():
			return wrapErr("load collection "+s.collection, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// SchemaError says an existing collection cannot hold this store's records: another dimension,
// a missing field, a field of another type. It wraps errs.ErrFailedPrecondition.
type SchemaError struct {
	Collection string
	Reason     string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("milvus collection %q does not fit this store: %s", e.Collection, e.Reason)
}

func (e *SchemaError) Unwrap() error { return errs.ErrFailedPrecondition }

func checkSchema(collection string, sch *entity.Schema, dim int) error {
	fields := make(map[string]*entity.Field, len(sch.Fields))
	for _, f := range sch.Fields {
		fields[f.Name] = f
	}
	want := schema(collection, dim)
	for _, w := range want.Fields {
		f, ok := fields[w.Name]
		switch {
		case !ok:
			return &SchemaError{Collection: collection, Reason: fmt.Sprintf("it has no field %q (was it made by another program?)", w.Name)}
		case f.DataType != w.DataType:
			return &SchemaError{Collection: collection, Reason: fmt.Sprintf("field %q is %s, want %s", w.Name, f.DataType.String(), w.DataType.String())}
		case w.PrimaryKey && !f.PrimaryKey:
			return &SchemaError{Collection: collection, Reason: fmt.Sprintf("field %q is not its primary key", w.Name)}
		}
		if w.DataType == entity.FieldTypeFloatVector {
			got, _ := strconv.Atoi(f.TypeParams[entity.TypeParamDim])
			if got != dim {
				return &SchemaError{Collection: collection, Reason: fmt.Sprintf(
					"its vectors have dimension %d but the store is configured for %d; use another collection, or drop this one and re-embed", got, dim)}
			}
		}
	}
	return nil
}

// Dimension is the length every vector must have.
func (s *Store) Dimension() int { return s.dim }

// Collection is the name of the store's collection.
func (s *Store) Collection() string { return s.collection }

// Upsert writes records, replacing any with the same ID. Every record is checked before anything
// is sent, so a bad one writes nothing; a call larger than one request is sent in several, and a
// transient failure between them leaves the first written (an Upsert again repairs it). Records
// repeating an ID within the call: the last one wins. Text, title, URI and heading path longer
// than 65535 bytes are cut at a UTF-8 boundary; invalid UTF-8 in them becomes U+FFFD.
func (s *Store) Upsert(ctx context.Context, records []vector.Record) error {
	if len(records) == 0 {
		return nil
	}
	pos := make(map[string]int, len(records))
	rows := make([]vector.Record, 0, len(records))
	for i, r := range records {
		if err := s.checkRecord(i, r); err != nil {
			return err
		}
		if j, ok := pos[r.ID]; ok {
			rows[j] = r
			continue
		}
		pos[r.ID] = len(rows)
		rows = append(rows, r)
	}

	for start := 0; start < len(rows); {
		end, size := start, 0
		for end < len(rows) && (end == start || size+rowSize(rows[end]) <= maxBatchBytes) {
			size += rowSize(rows[end])
			end++
		}
		if err := s.upsertBatch(ctx, rows[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (s *Store) checkRecord(i int, r vector.Record) error {
	if len(r.Vector) != s.dim {
		return errs.InvalidArgument("vector", "record %d (%q) has %d dimensions, the store has %d", i, r.ID, len(r.Vector), s.dim)
	}
	for _, f := range []struct{ name, value string }{
		{fieldID, r.ID}, {fieldSourceID, r.SourceID}, {fieldDocumentID, r.DocumentID},
	} {
		if len(f.value) > maxIDLength {
			return errs.InvalidArgument(f.name, "record %d: %d bytes, at most %d", i, len(f.value), maxIDLength)
		}
		if !utf8.ValidString(f.value) {
			return errs.InvalidArgument(f.name, "record %d: not valid UTF-8", i)
		}
	}
	if r.ID == "" {
		return errs.InvalidArgument(fieldID, "record %d has none", i)
	}
	return nil
}

// rowSize estimates a record's share of a request.
func rowSize(r vector.Record) int {
	return 4*len(r.Vector) + len(r.ID) + len(r.SourceID) + len(r.DocumentID) + len(r.Text) +
		len(r.Title) + len(r.URI) + len(r.HeadingPath) + 64
}

func (s *Store) upsertBatch(ctx context.Context, rows []vector.Record) error {
	n := len(rows)
	ids, sources, docs := make([]string, n), make([]string, n), make([]string, n)
	texts, titles, uris, headings := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	indexes, starts, ends := make([]int64, n), make([]int64, n), make([]int64, n)
	vectors := make([][]float32, n)
	for i, r := range rows {
		ids[i], sources[i], docs[i] = r.ID, r.SourceID, r.DocumentID
		texts[i] = fitVarChar(r.Text)
		titles[i] = fitVarChar(r.Title)
		uris[i] = fitVarChar(r.URI)
		headings[i] = fitVarChar(r.HeadingPath)
		indexes[i], starts[i], ends[i] = int64(r.ChunkIndex), r.StartOffset, r.EndOffset
		vectors[i] = r.Vector
	}
	_, err := s.c.Upsert(ctx, s.collection, "",
		entity.NewColumnVarChar(fieldID, ids),
		entity.NewColumnVarChar(fieldSourceID, sources),
		entity.NewColumnVarChar(fieldDocumentID, docs),
		entity.NewColumnInt64(fieldChunkIndex, indexes),
		entity.NewColumnVarChar(fieldText, texts),
		entity.NewColumnVarChar(fieldTitle, titles),
		entity.NewColumnVarChar(fieldURI, uris),
		entity.NewColumnVarChar(fieldHeadingPath, headings),
		entity.NewColumnInt64(fieldStartOffset, starts),
		entity.NewColumnInt64(fieldEndOffset, ends),
		entity.NewColumnFloatVector(fieldVector, s.dim, vectors),
	)
	return wrapErr("upsert", err)
}

// fitVarChar makes s valid UTF-8 of at most maxTextLength bytes, cutting between runes.
func fitVarChar(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return truncateUTF8(s, maxTextLength)
}

// DeleteDocument removes the document's chunks whose index is >= fromIndex (all when fromIndex
// is 0 or less).
func (s *Store) DeleteDocument(ctx context.Context, documentID string, fromIndex int) error {
	return wrapErr("delete document "+documentID, s.c.Delete(ctx, s.collection, "", documentExpr(documentID, fromIndex)))
}

// DeleteSource removes every chunk of the source.
func (s *Store) DeleteSource(ctx context.Context, sourceID string) error {
	return wrapErr("delete source "+sourceID, s.c.Delete(ctx, s.collection, "", eqExpr(fieldSourceID, sourceID)))
}

// Search returns up to topK records nearest to vec by cosine, best first, within filter. Hits
// carry every field but the vector. topK <= 0 finds nothing; above 16384 (Milvus's limit) it is
// lowered to 16384.
func (s *Store) Search(ctx context.Context, vec []float32, topK int, filter vector.Filter) ([]vector.Hit, error) {
	if len(vec) != s.dim {
		return nil, errs.InvalidArgument("vector", "query has %d dimensions, the store has %d", len(vec), s.dim)
	}
	if topK <= 0 {
		return nil, nil
	}
	topK = min(topK, maxTopK)
	var sp entity.SearchParam
	var err error
	if s.hnsw {
		sp, err = entity.NewIndexHNSWSearchParam(max(topK, minEf))
	} else {
		sp, err = entity.NewIndexFlatSearchParam()
	}
	if err != nil {
		return nil, fmt.Errorf("milvus search: %w", err)
	}
	res, err := s.c.Search(ctx, s.collection, nil, filterExpr(filter), outputFields,
		[]entity.Vector{entity.FloatVector(vec)}, fieldVector, s.metric, topK, sp,
		client.WithSearchQueryConsistencyLevel(s.consistency))
	if err != nil {
		return nil, wrapErr("search", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return hits(res[0])
}

func hits(r client.SearchResult) ([]vector.Hit, error) {
	if r.Err != nil {
		return nil, wrapErr("search", r.Err)
	}
	if r.ResultCount == 0 {
		return nil, nil
	}
	cols := newColumnReader(r.Fields)
	ids := newColumnReader(client.ResultSet{r.IDs})
	out := make([]vector.Hit, r.ResultCount)
	for i := range out {
		h := &out[i]
		h.ID = ids.str(fieldID, i)
		h.SourceID = cols.str(fieldSourceID, i)
		h.DocumentID = cols.str(fieldDocumentID, i)
		h.ChunkIndex = int(cols.int64(fieldChunkIndex, i))
		h.Text = cols.str(fieldText, i)
		h.Title = cols.str(fieldTitle, i)
		h.URI = cols.str(fieldURI, i)
		h.HeadingPath = cols.str(fieldHeadingPath, i)
		h.StartOffset = cols.int64(fieldStartOffset, i)
		h.EndOffset = cols.int64(fieldEndOffset, i)
		h.Score = r.Scores[i] // COSINE and IP are similarities already: higher is nearer.
	}
	if err := cmp.Or(ids.err, cols.err); err != nil {
		return nil, fmt.Errorf("milvus search: reading the result: %w", err)
	}
	return out, nil
}

// columnReader reads result columns by name, remembering the first failure so the caller checks
// once.
type columnReader struct {
	client.ResultSet
	err error
}

func newColumnReader(rs client.ResultSet) *columnReader { return &columnReader{ResultSet: rs} }

func (c *columnReader) str(name string, i int) string {
	col := c.column(name)
	if col == nil {
		return ""
	}
	v, err := col.GetAsString(i)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("field %s row %d: %w", name, i, err)
	}
	return v
}

func (c *columnReader) int64(name string, i int) int64 {
	col := c.column(name)
	if col == nil {
		return 0
	}
	v, err := col.GetAsInt64(i)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("field %s row %d: %w", name, i, err)
	}
	return v
}

func (c *columnReader) column(name string) entity.Column {
	col := c.GetColumn(name)
	if col == nil && c.err == nil {
		c.err = fmt.Errorf("field %s missing", name)
	}
	return col
}

// Count returns how many records match filter.
func (s *Store) Count(ctx context.Context, filter vector.Filter) (int, error) {
	rs, err := s.c.Query(ctx, s.collection, nil, filterExpr(filter), []string{countField},
		client.WithSearchQueryConsistencyLevel(s.consistency))
	if err != nil {
		return 0, wrapErr("count", err)
	}
	col := rs.GetColumn(countField)
	if col == nil || col.Len() != 1 {
		return 0, fmt.Errorf("milvus count: the result has no single %s", countField)
	}
	n, err := col.GetAsInt64(0)
	if err != nil {
		return 0, fmt.Errorf("milvus count: %w", err)
	}
	return int(n), nil
}

const countField = "count(*)"

// Close releases the connection. Milvus persists writes itself: there is nothing to flush.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.Close() })
	return s.closeErr
}

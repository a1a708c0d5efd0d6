package milvus_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/vector"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus"
	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testBundle struct {
	fake *milvusfake.Server
	cfg  milvus.Config
}

// setup starts a fake of the test's own and a config for a collection on it.
func setup(t *testing.T, opts ...milvusfake.Option) *testBundle {
	t.Helper()
	fake := milvusfake.New(t, opts...)
	return &testBundle{fake: fake, cfg: milvus.Config{Address: fake.Addr(), Collection: "chunks", Dimension: 4}}
}

func open(t *testing.T, cfg milvus.Config) *milvus.Store {
	t.Helper()
	s, err := milvus.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// sdk connects to the fake directly, to arrange collections the store did not make.
func sdk(t *testing.T, addr string) client.Client {
	t.Helper()
	c, err := client.NewClient(context.Background(), client.Config{Address: addr})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func rec(source, doc string, index int, vec ...float32) vector.Record {
	return vector.Record{
		ID: vector.ChunkID(doc, index), SourceID: source, DocumentID: doc, ChunkIndex: index,
		Text: fmt.Sprintf("%s #%d", doc, index), Vector: vec,
	}
}

func count(t *testing.T, s *milvus.Store, f vector.Filter) int {
	t.Helper()
	n, err := s.Count(context.Background(), f)
	require.NoError(t, err)
	return n
}

func requireTransient(t *testing.T, err error, want bool) {
	t.Helper()
	require.Error(t, err)
	got, _ := errs.IsTransient(err)
	require.Equal(t, want, got, "transient? %v", err)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	cfg := milvus.Config{Address: "localhost:19530", Dimension: 384}.WithDefaults()
	require.Equal(t, milvus.DefaultCollection, cfg.Collection)
	require.Equal(t, milvus.ConsistencyStrong, cfg.Consistency)
	require.Equal(t, 3, cfg.MaxAttempts)
	require.Equal(t, 10*time.Second, cfg.ConnectTimeout)
	require.NoError(t, cfg.Validate())

	for name, c := range map[string]struct {
		mutate func(*milvus.Config)
		field  string
	}{
		"no address":      {func(c *milvus.Config) { c.Address = "" }, "milvus_address"},
		"no dimension":    {func(c *milvus.Config) { c.Dimension = 0 }, "milvus_dimension"},
		"huge dimension":  {func(c *milvus.Config) { c.Dimension = 40000 }, "milvus_dimension"},
		"key and user":    {func(c *milvus.Config) { c.APIKey, c.Username = "k", "u" }, "milvus_api_key"},
		"bad consistency": {func(c *milvus.Config) { c.Consistency = "strong-ish" }, "milvus_consistency"},
	} {
		bad := cfg
		c.mutate(&bad)
		err := bad.Validate()
		var iae *errs.InvalidArgumentError
		require.ErrorAs(t, err, &iae, name)
		require.Equal(t, c.field, iae.Field, name)

		_, err = milvus.Open(context.Background(), bad)
		require.ErrorIs(t, err, errs.ErrInvalidArgument, name)
	}

	_, err := milvus.Open(context.Background(), milvus.Config{Address: "localhost:1", Dimension: 4, TLSCAFile: "/nonexistent/ca.pem"})
	require.ErrorIs(t, err, errs.ErrInvalidArgument)
}

func TestOpenCreatesCollection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.cfg
	cfg.Collection = ""
	s := open(t, cfg)
	require.Equal(t, milvus.DefaultCollection, s.Collection())
	require.Equal(t, 4, s.Dimension())
	require.Equal(t, 0, b.fake.Rows(milvus.DefaultCollection))
	require.Equal(t, 0, b.fake.Calls("Connect"), "skipped: the SDK leaks its connection when Connect fails")
	require.Positive(t, b.fake.Calls("HasCollection"))
	require.Equal(t, 1, b.fake.Calls("CreateCollection"))
	require.Equal(t, 1, b.fake.Calls("CreateIndex"))
	require.Equal(t, 1, b.fake.Calls("LoadCollection"))

	c := sdk(t, b.fake.Addr())
	ctx := context.Background()
	coll, err := c.DescribeCollection(ctx, milvus.DefaultCollection)
	require.NoError(t, err)
	types := map[string]entity.FieldType{}
	for _, f := range coll.Schema.Fields {
		types[f.Name] = f.DataType
	}
	require.Equal(t, map[string]entity.FieldType{
		"id": entity.FieldTypeVarChar, "source_id": entity.FieldTypeVarChar, "document_id": entity.FieldTypeVarChar,
		"chunk_index": entity.FieldTypeInt64, "text": entity.FieldTypeVarChar, "title": entity.FieldTypeVarChar,
		"uri": entity.FieldTypeVarChar, "heading_path": entity.FieldTypeVarChar,
		"start_offset": entity.FieldTypeInt64, "end_offset": entity.FieldTypeInt64, "vector": entity.FieldTypeFloatVector,
	}, types)
	require.Equal(t, "id", coll.Schema.PKFieldName())
	require.Equal(t, entity.ClStrong, coll.ConsistencyLevel)

	idx, err := c.DescribeIndex(ctx, milvus.DefaultCollection, "vector")
	require.NoError(t, err)
	require.Len(t, idx, 1)
	require.Equal(t, "HNSW", idx[0].Params()["index_type"])
	require.Equal(t, "COSINE", idx[0].Params()["metric_type"])
}

func TestReopenFindsExistingCollection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	s, err := milvus.Open(ctx, b.cfg)
	require.NoError(t, err)
	require.NoError(t, s.Upsert(ctx, []vector.Record{rec("s", "d", 0, 1, 0, 0, 0), rec("s", "d", 1, 0, 1, 0, 0)}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice")

	s = open(t, b.cfg)
	require.Equal(t, 2, count(t, s, vector.Filter{}))
	require.Equal(t, 1, b.fake.Calls("CreateCollection"))
	require.Equal(t, 1, b.fake.Calls("CreateIndex"))
	require.Equal(t, 2, b.fake.Calls("LoadCollection"))

	// Two stores on one collection see each other's writes.
	other := open(t, b.cfg)
	require.NoError(t, other.Upsert(ctx, []vector.Record{rec("s", "d", 2, 0, 0, 1, 0)}))
	require.Equal(t, 3, count(t, s, vector.Filter{}))
}

func TestOpenRefusesOtherDimension(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open(t, b.cfg)

	cfg := b.cfg
	cfg.Dimension = 16
	_, err := milvus.Open(context.Background(), cfg)
	require.ErrorIs(t, err, errs.ErrFailedPrecondition)
	var se *milvus.SchemaError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "chunks", se.Collection)
	require.Contains(t, err.Error(), "dimension 4")
	require.Contains(t, err.Error(), "16")
	requireTransient(t, err, false)
}

func TestOpenRefusesForeignCollections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := sdk(t, b.fake.Addr())
	ctx := context.Background()

	// Someone else's collection under the name: wrong fields.
	foreign := entity.NewSchema().WithName("foreign").
		WithField(entity.NewField().WithName("pk").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("vector").WithDataType(entity.FieldTypeFloatVector).WithDim(4))
	require.NoError(t, c.CreateCollection(ctx, foreign, 1))
	cfg := b.cfg
	cfg.Collection = "foreign"
	_, err := milvus.Open(ctx, cfg)
	var se *milvus.SchemaError
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), `no field "id"`)

	// The right fields, but an L2 index: scores would be distances.
	l2, err := entity.NewIndexHNSW(entity.L2, 16, 64)
	require.NoError(t, err)
	require.NoError(t, c.CreateCollection(ctx, collectionLike(t, b, "l2_chunks"), 1))
	require.NoError(t, c.CreateIndex(ctx, "l2_chunks", "vector", l2, false))
	cfg.Collection = "l2_chunks"
	_, err = milvus.Open(ctx, cfg)
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), `metric "L2"`)
}

// collectionLike is the schema the store makes, under another name, taken from a store-made
// collection.
func collectionLike(t *testing.T, b *testBundle, name string) *entity.Schema {
	t.Helper()
	cfg := b.cfg
	cfg.Collection = "template_" + name
	s := open(t, cfg)
	require.NoError(t, s.Close())
	coll, err := sdk(t, b.fake.Addr()).DescribeCollection(context.Background(), cfg.Collection)
	require.NoError(t, err)
	sch := coll.Schema
	sch.CollectionName = name
	return sch
}

func TestOpenLoadsAnUnloadedCollection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	require.NoError(t, s.Close())
	require.NoError(t, sdk(t, b.fake.Addr()).ReleaseCollection(context.Background(), "chunks"))

	s = open(t, b.cfg)
	require.Equal(t, 0, count(t, s, vector.Filter{}))
}

// Filter and delete values go into expressions; quotes, backslashes and the like must stay values.
func TestExpressionEscaping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()

	nasty := []string{
		`plain`,
		`with "double" quotes`,
		`with 'single' quotes`,
		`back\slash`,
		`trailing backslash\`,
		`\"`,
		`" or document_id != "`,
		"new\nline\ttab\x00nul",
		`ünïcödé ✓ 日本`,
		`]`,
		``,
	}
	var recs []vector.Record
	for i, id := range nasty {
		recs = append(recs,
			rec(id, id, 0, 1, float32(i), 0, 0),
			rec(id, id, 1, 0, 1, float32(i), 0),
			rec(id, id, 2, 0, 0, 1, float32(i)))
	}
	require.NoError(t, s.Upsert(ctx, recs))
	require.Equal(t, 3*len(nasty), count(t, s, vector.Filter{}))

	for _, id := range nasty {
		require.Equal(t, 3, count(t, s, vector.Filter{SourceIDs: []string{id}}), "source %q", id)
		require.Equal(t, 3, count(t, s, vector.Filter{DocumentIDs: []string{id}}), "document %q", id)
		hits, err := s.Search(ctx, []float32{1, 1, 1, 1}, 10, vector.Filter{SourceIDs: []string{id}, DocumentIDs: []string{id, "other"}})
		require.NoError(t, err)
		require.Len(t, hits, 3, "search %q", id)
		for _, h := range hits {
			require.Equal(t, id, h.SourceID)
			require.Equal(t, id, h.DocumentID)
		}
	}
	require.Equal(t, 6, count(t, s, vector.Filter{DocumentIDs: []string{nasty[1], nasty[3]}}))

	// Deletes touch their own id only.
	left := 3 * len(nasty)
	for i, id := range nasty {
		if i%2 == 0 {
			require.NoError(t, s.DeleteDocument(ctx, id, 1))
			left -= 2
			require.Equal(t, 1, count(t, s, vector.Filter{DocumentIDs: []string{id}}), "document %q", id)
		} else {
			require.NoError(t, s.DeleteSource(ctx, id))
			left -= 3
			require.Equal(t, 0, count(t, s, vector.Filter{SourceIDs: []string{id}}), "source %q", id)
		}
		require.Equal(t, left, count(t, s, vector.Filter{}), "after deleting %q", id)
	}
}

func TestUpsertChecksBeforeWriting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()

	long := strings.Repeat("x", 129)
	for name, r := range map[string]vector.Record{
		"long id":       {ID: long, Vector: []float32{1, 0, 0, 0}},
		"long source":   {ID: "a", SourceID: long, Vector: []float32{1, 0, 0, 0}},
		"long document": {ID: "a", DocumentID: long, Vector: []float32{1, 0, 0, 0}},
		"no id":         {Vector: []float32{1, 0, 0, 0}},
		"bad utf-8 id":  {ID: "a\xff", Vector: []float32{1, 0, 0, 0}},
	} {
		err := s.Upsert(ctx, []vector.Record{rec("s", "ok", 0, 1, 0, 0, 0), r})
		require.ErrorIs(t, err, errs.ErrInvalidArgument, name)
		requireTransient(t, err, false)
	}
	require.Equal(t, 0, b.fake.Calls("Upsert"))
	require.Equal(t, 0, count(t, s, vector.Filter{}))
}

func TestUpsertRepeatedIDLastWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()

	first, second := rec("s", "d", 0, 1, 0, 0, 0), rec("s", "d", 0, 0, 1, 0, 0)
	second.Text = "second"
	require.NoError(t, s.Upsert(ctx, []vector.Record{first, rec("s", "d", 1, 0, 0, 1, 0), second}))
	require.Equal(t, 2, count(t, s, vector.Filter{}))
	hits, err := s.Search(ctx, []float32{0, 1, 0, 0}, 1, vector.Filter{})
	require.NoError(t, err)
	require.Equal(t, "second", hits[0].Text)
	require.InDelta(t, 1, hits[0].Score, 1e-6)
}

func TestLongTextIsCutAtARuneBoundary(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()

	r := rec("s", "d", 0, 1, 0, 0, 0)
	r.Text = "a" + strings.Repeat("日", 30000) // 90001 bytes; 65535 falls inside a rune
	r.Title = strings.Repeat("ü", 40000)      // 80000 bytes
	r.HeadingPath = "ok \xff broken"          // invalid UTF-8 is replaced
	require.NoError(t, s.Upsert(ctx, []vector.Record{r}))

	hits, err := s.Search(ctx, r.Vector, 1, vector.Filter{})
	require.NoError(t, err)
	require.Len(t, hits, 1)
	h := hits[0]
	require.True(t, utf8.ValidString(h.Text))
	require.LessOrEqual(t, len(h.Text), 65535)
	require.Greater(t, len(h.Text), 65535-3)
	require.True(t, strings.HasPrefix(r.Text, h.Text))
	require.Len(t, h.Title, 65534)
	require.Equal(t, "ok \uFFFD broken", h.HeadingPath)
}

func TestUpsertSplitsLargeCalls(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()

	text := strings.Repeat("x", 60000)
	recs := make([]vector.Record, 300) // about 18 MB: more than two requests' worth
	for i := range recs {
		recs[i] = rec("s", fmt.Sprintf("d%d", i%7), i, 1, float32(i), 0, 0)
		recs[i].Text = text
	}
	require.NoError(t, s.Upsert(ctx, recs))
	require.Equal(t, 3, b.fake.Calls("Upsert"))
	require.Equal(t, 300, count(t, s, vector.Filter{}))
}

func TestSearchEdges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()
	require.NoError(t, s.Upsert(ctx, []vector.Record{rec("s", "d", 0, 1, 0, 0, 0), rec("s", "d", 1, -1, 0, 0, 0)}))

	hits, err := s.Search(ctx, []float32{1, 0, 0, 0}, 0, vector.Filter{})
	require.NoError(t, err)
	require.Empty(t, hits)

	hits, err = s.Search(ctx, []float32{1, 0, 0, 0}, 1_000_000, vector.Filter{})
	require.NoError(t, err, "topK above Milvus's limit is lowered")
	require.Len(t, hits, 2)
	require.InDelta(t, 1, hits[0].Score, 1e-6)
	require.InDelta(t, -1, hits[1].Score, 1e-6, "opposite vectors score -1: similarity, not distance")
}

// Every read asks for Strong consistency unless configured otherwise.
func TestConsistency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		level milvus.Consistency
		ts    uint64 // what the SDK sends for the level
	}{
		{"", 0},
		{milvus.ConsistencyStrong, 0},
		{milvus.ConsistencyBounded, 2},
		{milvus.ConsistencyEventually, 1},
	} {
		b := setup(t)
		cfg := b.cfg
		cfg.Consistency = c.level
		s := open(t, cfg)
		_, err := s.Search(ctx, []float32{1, 0, 0, 0}, 1, vector.Filter{})
		require.NoError(t, err)
		count(t, s, vector.Filter{})
		require.Equal(t, []uint64{c.ts, c.ts}, b.fake.GuaranteeTimestamps(), "level %q", c.level)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	b := setup(t, milvusfake.WithToken("alice:secret"))
	cfg := b.cfg
	cfg.Username, cfg.Password = "alice", "secret"
	open(t, cfg)

	cfg.Password = "wrong"
	_, err := milvus.Open(ctx, cfg)
	requireTransient(t, err, false)
	require.Contains(t, err.Error(), "auth")

	b = setup(t, milvusfake.WithToken("api-key-1"))
	cfg = b.cfg
	cfg.APIKey = "api-key-1"
	open(t, cfg)
}

// The fault switch stands for a proxy that is down, overloaded or slow: each failure must come
// back as errs.Transient so the caller retries, and a bad request must not.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.cfg
	cfg.MaxAttempts = 1 // no retries inside the SDK: every fault reaches the store
	s := open(t, cfg)
	ctx := context.Background()
	require.NoError(t, s.Upsert(ctx, []vector.Record{rec("s", "d", 0, 1, 0, 0, 0)}))

	ops := map[string]func() error{
		"upsert":          func() error { return s.Upsert(ctx, []vector.Record{rec("s", "d", 1, 0, 1, 0, 0)}) },
		"search":          func() error { _, err := s.Search(ctx, []float32{1, 0, 0, 0}, 3, vector.Filter{}); return err },
		"count":           func() error { _, err := s.Count(ctx, vector.Filter{SourceIDs: []string{"s"}}); return err },
		"delete document": func() error { return s.DeleteDocument(ctx, "d", 5) },
		"delete source":   func() error { return s.DeleteSource(ctx, "nope") },
	}
	faults := []struct {
		name      string
		inject    func()
		transient bool
	}{
		{"unavailable", func() { b.fake.FailNext(1, codes.Unavailable) }, true},
		{"deadline exceeded", func() { b.fake.FailNext(1, codes.DeadlineExceeded) }, true},
		{"resource exhausted", func() { b.fake.FailNext(1, codes.ResourceExhausted) }, true},
		{"rate limited", func() {
			b.fake.FailNextStatus(1, &commonpb.Status{ErrorCode: commonpb.ErrorCode_RateLimit, Code: 8, Reason: "rate limit exceeded", Retriable: true})
		}, true},
		{"not ready", func() {
			b.fake.FailNextStatus(1, &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: 1, Reason: "service not ready"})
		}, true},
		{"invalid argument", func() { b.fake.FailNext(1, codes.InvalidArgument) }, false},
		{"bad request status", func() {
			b.fake.FailNextStatus(1, &commonpb.Status{ErrorCode: commonpb.ErrorCode_IllegalArgument, Code: 1100, Reason: "invalid parameter"})
		}, false},
	}
	for _, f := range faults {
		for name, op := range ops {
			f.inject()
			err := op()
			requireTransient(t, err, f.transient)
			require.Contains(t, err.Error(), "milvus ", "%s/%s", f.name, name)
			require.NoError(t, op(), "%s/%s: the fault lasts one call", f.name, name)
		}
	}

	var se *milvus.StatusError
	b.fake.FailNextStatus(1, &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: 65535, Reason: "boom"})
	err := ops["count"]()
	require.ErrorAs(t, err, &se)
	require.Equal(t, int32(65535), se.Code)
	require.Equal(t, "boom", se.Reason)

	// A context deadline is transient too; a cancellation is the caller's own doing.
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-short.Done()
	_, err = s.Count(short, vector.Filter{})
	requireTransient(t, err, true)
	cancelled, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = s.Count(cancelled, vector.Filter{})
	requireTransient(t, err, false)
}

func TestSDKRetriesBriefOutages(t *testing.T) {
	t.Parallel()
	b := setup(t) // default MaxAttempts: 3
	s := open(t, b.cfg)
	before := b.fake.Calls("Query")
	b.fake.FailNext(1, codes.Unavailable)
	require.Equal(t, 0, count(t, s, vector.Filter{}))
	require.Equal(t, before+2, b.fake.Calls("Query"))
}

func TestUnreachableMilvusIsTransient(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close()) // nothing listens there now: connection refused

	start := time.Now()
	_, err = milvus.Open(context.Background(), milvus.Config{Address: addr, Dimension: 4, ConnectTimeout: 300 * time.Millisecond})
	requireTransient(t, err, true)
	require.Less(t, time.Since(start), 5*time.Second)

	// And a server that goes away under an open store.
	b := setup(t)
	cfg := b.cfg
	cfg.MaxAttempts = 1
	s := open(t, cfg)
	b.fake.Stop()
	_, err = s.Search(context.Background(), []float32{1, 0, 0, 0}, 1, vector.Filter{})
	requireTransient(t, err, true)
}

func TestScoresAreCosine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := open(t, b.cfg)
	ctx := context.Background()
	// Not normalised on purpose: cosine ignores length.
	require.NoError(t, s.Upsert(ctx, []vector.Record{rec("s", "d", 0, 3, 4, 0, 0), rec("s", "d", 1, 0, 0, 0, 2)}))
	hits, err := s.Search(ctx, []float32{1, 0, 0, 0}, 2, vector.Filter{})
	require.NoError(t, err)
	require.Len(t, hits, 2)
	require.InDelta(t, 0.6, hits[0].Score, 1e-6)
	require.InDelta(t, 0, hits[1].Score, 1e-6)
	require.False(t, math.IsNaN(float64(hits[1].Score)))
}

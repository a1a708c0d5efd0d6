package milvusfake_test

import (
	"context"
	"testing"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipeline-dev/pipeline/internal/vector/milvus/milvusfake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts a fake and makes collection "c": VarChar pk "id" (max 8), VarChar "doc", Int64
// "n", FloatVector "v" of dim 2 with a FLAT index of metric, loaded, holding three rows.
func setup(t *testing.T, metric entity.MetricType) (*milvusfake.Server, client.Client) {
	t.Helper()
	fake := milvusfake.New(t)
	ctx := context.Background()
	c, err := client.NewClient(ctx, client.Config{Address: fake.Addr()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	sch := entity.NewSchema().WithName("c").
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeVarChar).WithMaxLength(8).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("doc").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64)).
		WithField(entity.NewField().WithName("n").WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(2))
	require.NoError(t, c.CreateCollection(ctx, sch, 1))
	idx, err := entity.NewIndexFlat(metric)
	require.NoError(t, err)
	require.NoError(t, c.CreateIndex(ctx, "c", "v", idx, false))
	require.NoError(t, c.LoadCollection(ctx, "c", false))

	_, err = c.Insert(ctx, "c", "",
		entity.NewColumnVarChar("id", []string{"a", "b", "c"}),
		entity.NewColumnVarChar("doc", []string{`x"y`, "x", "z"}),
		entity.NewColumnInt64("n", []int64{1, 2, 3}),
		entity.NewColumnFloatVector("v", 2, [][]float32{{1, 0}, {0, 2}, {-1, -1}}))
	require.NoError(t, err)
	return fake, c
}

func count(t *testing.T, c client.Client, expr string) int64 {
	t.Helper()
	rs, err := c.Query(context.Background(), "c", nil, expr, []string{"count(*)"})
	require.NoError(t, err)
	n, err := rs.GetColumn("count(*)").GetAsInt64(0)
	require.NoError(t, err)
	return n
}

func TestConnectIsAnswered(t *testing.T) {
	t.Parallel()
	fake, _ := setup(t, entity.COSINE)
	// Unimplemented would make the SDK switch off dynamic fields and partition keys quietly.
	require.Equal(t, 1, fake.Calls("Connect"))
}

func TestFilters(t *testing.T) {
	t.Parallel()
	_, c := setup(t, entity.COSINE)
	for expr, want := range map[string]int64{
		``:                            3,
		`doc == "x"`:                  1,
		`doc == "x\"y"`:               1,
		`doc in ["x", "x\"y", "q"]`:   2,
		`doc in []`:                   0,
		`n >= 2`:                      2,
		`n >= 2 and doc in ["x","z"]`: 2,
		`n == 3 and doc == "z"`:       1,
		`id in ["a"] and n >= 2`:      0,
	} {
		require.Equal(t, want, count(t, c, expr), expr)
	}

	// Everything else fails loudly, and a failed delete deletes nothing.
	for _, expr := range []string{
		`doc != "x"`, `doc == "x" or n >= 1`, `(doc == "x")`, `doc like "x%"`, `n < 3`, `n > 1`,
		`doc == 'x'`, `v == "x"`, `n == "3"`, `doc == 3`, `nosuch == "x"`, `doc == "x" AND n >= 1`,
		`doc == "x" &&  n >= 1`, `not doc == "x"`, `doc in ["x"`, `doc ==`, `doc == "unterminated`,
	} {
		err := c.Delete(context.Background(), "c", "", expr)
		require.Error(t, err, expr)
		require.Contains(t, err.Error(), "milvusfake", expr)
		_, err = c.Query(context.Background(), "c", nil, expr, []string{"count(*)"})
		require.Error(t, err, expr)
	}
	require.Equal(t, int64(3), count(t, c, ""))

	require.NoError(t, c.Delete(context.Background(), "c", "", `doc == "x\"y" and n >= 1`))
	require.Equal(t, int64(2), count(t, c, ""))
}

func TestWritesAreChecked(t *testing.T) {
	t.Parallel()
	fake, c := setup(t, entity.COSINE)
	ctx := context.Background()
	write := func(id, doc string, vec []float32, upsert bool) error {
		cols := []entity.Column{
			entity.NewColumnVarChar("id", []string{id}),
			entity.NewColumnVarChar("doc", []string{doc}),
			entity.NewColumnInt64("n", []int64{9}),
			entity.NewColumnFloatVector("v", len(vec), [][]float32{vec}),
		}
		var err error
		if upsert {
			_, err = c.Upsert(ctx, "c", "", cols...)
		} else {
			_, err = c.Insert(ctx, "c", "", cols...)
		}
		return err
	}
	require.ErrorContains(t, write("a", "again", []float32{1, 1}, false), "exists already")
	require.ErrorContains(t, write("toolongid", "d", []float32{1, 1}, true), "exceeds max length")
	// The SDK checks the dimension itself; the fake would refuse it too.
	require.Error(t, write("d", "d", []float32{1, 1, 1}, true))
	require.Equal(t, 3, fake.Rows("c"))

	require.NoError(t, write("a", "replaced", []float32{1, 1}, true))
	rs, err := c.Query(ctx, "c", nil, `id in ["a"]`, []string{"doc"})
	require.NoError(t, err)
	doc, err := rs.GetColumn("doc").GetAsString(0)
	require.NoError(t, err)
	require.Equal(t, "replaced", doc)
	require.Equal(t, 3, fake.Rows("c"))

	_, err = c.Upsert(ctx, "c", "",
		entity.NewColumnVarChar("id", []string{"e", "e"}),
		entity.NewColumnVarChar("doc", []string{"1", "2"}),
		entity.NewColumnInt64("n", []int64{1, 2}),
		entity.NewColumnFloatVector("v", 2, [][]float32{{1, 0}, {0, 1}}))
	require.ErrorContains(t, err, "duplicate primary key")
}

func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sp, err := entity.NewIndexFlatSearchParam()
	require.NoError(t, err)
	search := func(c client.Client, metric entity.MetricType, expr string, topK int) ([]string, []float32, error) {
		res, err := c.Search(ctx, "c", nil, expr, []string{"doc", "n"}, []entity.Vector{entity.FloatVector{1, 0}}, "v", metric, topK, sp)
		if err != nil {
			return nil, nil, err
		}
		ids := res[0].IDs.(*entity.ColumnVarChar).Data()
		return ids, res[0].Scores, nil
	}

	_, c := setup(t, entity.COSINE)
	ids, scores, err := search(c, entity.COSINE, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, ids)
	require.InDeltaSlice(t, []float32{1, 0, -0.70710677}, scores, 1e-6)
	ids, _, err = search(c, entity.COSINE, `n >= 2`, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids)
	_, _, err = search(c, entity.L2, "", 1)
	require.ErrorContains(t, err, "metric type not match")

	_, c = setup(t, entity.L2)
	ids, scores, err = search(c, entity.L2, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, ids)
	require.InDeltaSlice(t, []float32{0, 5, 5}, scores, 1e-6, "squared distances, nearest first")

	_, c = setup(t, entity.IP)
	ids, scores, err = search(c, entity.IP, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, ids)
	require.InDeltaSlice(t, []float32{1, 0, -1}, scores, 1e-6)

	// Reads need a loaded collection.
	require.NoError(t, c.ReleaseCollection(ctx, "c"))
	_, _, err = search(c, entity.IP, "", 1)
	require.ErrorContains(t, err, "not loaded")
}

func TestQueryRows(t *testing.T) {
	t.Parallel()
	_, c := setup(t, entity.COSINE)
	ctx := context.Background()
	rs, err := c.Query(ctx, "c", nil, `n >= 2`, []string{"doc", "n"})
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c"}, rs.GetColumn("id").(*entity.ColumnVarChar).Data())
	require.Equal(t, []int64{2, 3}, rs.GetColumn("n").(*entity.ColumnInt64).Data())

	_, err = c.Query(ctx, "c", nil, ``, []string{"doc"})
	require.ErrorContains(t, err, "limit")
	rs, err = c.Query(ctx, "c", nil, ``, []string{"doc"}, client.WithLimit(1), client.WithOffset(1))
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, rs.GetColumn("id").(*entity.ColumnVarChar).Data())
}

func TestSchemaChecks(t *testing.T) {
	t.Parallel()
	fake := milvusfake.New(t)
	ctx := context.Background()
	c, err := client.NewClient(ctx, client.Config{Address: fake.Addr()})
	require.NoError(t, err)
	defer c.Close()

	vec := entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(2)
	pk := entity.NewField().WithName("id").WithDataType(entity.FieldTypeVarChar).WithMaxLength(8).WithIsPrimaryKey(true)
	for name, sch := range map[string]*entity.Schema{
		"int64 pk":         entity.NewSchema().WithName("a").WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).WithField(vec),
		"no max_length":    entity.NewSchema().WithName("b").WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeVarChar).WithIsPrimaryKey(true)).WithField(vec),
		"float field":      entity.NewSchema().WithName("c").WithField(pk).WithField(vec).WithField(entity.NewField().WithName("f").WithDataType(entity.FieldTypeFloat)),
		"bad name":         entity.NewSchema().WithName("no-dashes").WithField(pk).WithField(vec),
		"dynamic fields":   entity.NewSchema().WithName("d").WithField(pk).WithField(vec).WithDynamicFieldEnabled(true),
		"zero dimension":   entity.NewSchema().WithName("e").WithField(pk).WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(0)),
		"two primary keys": entity.NewSchema().WithName("f").WithField(pk).WithField(vec).WithField(entity.NewField().WithName("id2").WithDataType(entity.FieldTypeVarChar).WithMaxLength(8).WithIsPrimaryKey(true)),
	} {
		err := c.CreateCollection(ctx, sch, 1)
		require.Error(t, err, name)
	}

	ok := entity.NewSchema().WithName("ok").WithField(pk).WithField(vec)
	require.NoError(t, c.CreateCollection(ctx, ok, 1))
	require.NoError(t, c.CreateCollection(ctx, ok, 1), "the same schema again is fine")
	other := entity.NewSchema().WithName("ok").WithField(pk).WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(3))
	require.Error(t, c.CreateCollection(ctx, other, 1))

	require.ErrorContains(t, c.LoadCollection(ctx, "ok", true), "index not found")
	_, err = c.DescribeIndex(ctx, "ok", "v")
	require.ErrorContains(t, err, "index not found")
	has, err := c.HasCollection(ctx, "missing")
	require.NoError(t, err)
	require.False(t, has)
	_, err = c.DescribeCollection(ctx, "missing")
	require.ErrorContains(t, err, "collection not found")
}

func TestFaults(t *testing.T) {
	t.Parallel()
	fake, c := setup(t, entity.COSINE)
	ctx := context.Background()

	before := fake.Calls("HasCollection")
	fake.FailNext(2, codes.InvalidArgument) // not retried by the SDK
	for range 2 {
		_, err := c.HasCollection(ctx, "c")
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	}
	has, err := c.HasCollection(ctx, "c")
	require.NoError(t, err)
	require.True(t, has)
	require.Equal(t, before+3, fake.Calls("HasCollection"))
}

func TestToken(t *testing.T) {
	t.Parallel()
	fake := milvusfake.New(t, milvusfake.WithToken("u:p"))
	ctx := context.Background()
	c, err := client.NewClient(ctx, client.Config{Address: fake.Addr(), Username: "u", Password: "p"})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.HasCollection(ctx, "x")
	require.NoError(t, err)

	bad, err := client.NewClient(ctx, client.Config{Address: fake.Addr(), Username: "u", Password: "nope", DisableConn: true})
	require.NoError(t, err)
	defer bad.Close()
	_, err = bad.HasCollection(ctx, "x")
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

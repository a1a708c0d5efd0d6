package milvusfake

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

const maxTopK = 16384

// Insert adds rows; a primary key that exists already is refused (real Milvus would keep both
// rows, which no caller of this fake wants).
func (s *Server) Insert(_ context.Context, req *milvuspb.InsertRequest) (*milvuspb.MutationResult, error) {
	return s.write(req.GetCollectionName(), req.GetPartitionName(), req.GetFieldsData(), req.GetNumRows(), false), nil
}

// Upsert adds or replaces rows by primary key.
func (s *Server) Upsert(_ context.Context, req *milvuspb.UpsertRequest) (*milvuspb.MutationResult, error) {
	return s.write(req.GetCollectionName(), req.GetPartitionName(), req.GetFieldsData(), req.GetNumRows(), true), nil
}

func (s *Server) write(name, partition string, data []*schemapb.FieldData, numRows uint32, upsert bool) *milvuspb.MutationResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(name)
	if st != nil {
		return &milvuspb.MutationResult{Status: st}
	}
	if st := checkPartition(partition); st != nil {
		return &milvuspb.MutationResult{Status: st}
	}
	rows, st := c.decodeRows(data, int(numRows))
	if st != nil {
		return &milvuspb.MutationResult{Status: st}
	}
	ids := make([]string, len(rows))
	seen := make(map[string]bool, len(rows))
	for i, r := range rows {
		id := r.values[c.pk.GetName()].(string)
		if seen[id] {
			return &milvuspb.MutationResult{Status: failure(codeParameterInvalid,
				"duplicate primary key %q in one request (rows are not merged)", id)}
		}
		seen[id] = true
		if _, exists := c.rows[id]; exists && !upsert {
			return &milvuspb.MutationResult{Status: failure(codeParameterInvalid,
				"primary key %q exists already: the fake refuses to insert it twice", id)}
		}
		ids[i] = id
	}
	for _, r := range rows {
		c.seq++
		r.seq = c.seq
		c.rows[r.values[c.pk.GetName()].(string)] = r
	}
	s.ts++
	succ := make([]uint32, len(rows))
	for i := range succ {
		succ[i] = uint32(i)
	}
	res := &milvuspb.MutationResult{
		Status:    ok(),
		IDs:       strIDs(ids),
		SuccIndex: succ,
		Timestamp: s.ts,
	}
	if upsert {
		res.UpsertCnt = int64(len(rows))
	} else {
		res.InsertCnt = int64(len(rows))
	}
	return res
}

func checkPartition(p string) *commonpb.Status {
	if p != "" && p != "_default" {
		return failure(codeParameterInvalid, "partition %q: the fake has only _default", p)
	}
	return nil
}

func strIDs(ids []string) *schemapb.IDs {
	return &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: ids}}}
}

// decodeRows turns column data into rows, checking it against the schema as Milvus does: every
// field once, the right type, n values, VarChar within max_length, vectors of the right
// dimension and finite.
func (c *collection) decodeRows(data []*schemapb.FieldData, n int) ([]row, *commonpb.Status) {
	if n <= 0 {
		return nil, failure(codeParameterInvalid, "num_rows should be greater than 0")
	}
	rows := make([]row, n)
	for i := range rows {
		rows[i].values = make(map[string]any, len(c.fields))
	}
	given := map[string]bool{}
	for _, fd := range data {
		name := fd.GetFieldName()
		f, found := c.fields[name]
		switch {
		case fd.GetIsDynamic() || !found:
			return nil, failure(codeParameterInvalid, "field %s does not exist in collection %s", name, c.name)
		case given[name]:
			return nil, failure(codeParameterInvalid, "duplicated field %s", name)
		case fd.GetType() != f.GetDataType():
			return nil, failure(codeParameterInvalid, "field %s: data type %s, schema says %s", name, fd.GetType(), f.GetDataType())
		}
		given[name] = true
		switch f.GetDataType() {
		case schemapb.DataType_VarChar:
			vals := fd.GetScalars().GetStringData().GetData()
			if len(vals) != n {
				return nil, failure(codeParameterInvalid, "field %s has %d values, num_rows is %d", name, len(vals), n)
			}
			maxLen, _ := intParam(f.GetTypeParams(), "max_length")
			for i, v := range vals {
				if len(v) > maxLen {
					return nil, failure(codeParameterInvalid,
						"length of varchar field %s exceeds max length, row number: %d, length: %d, max length: %d", name, i, len(v), maxLen)
				}
				if !utf8.ValidString(v) {
					return nil, failure(codeParameterInvalid, "field %s row %d: string is not valid UTF-8", name, i)
				}
				rows[i].values[name] = v
			}
		case schemapb.DataType_Int64:
			vals := fd.GetScalars().GetLongData().GetData()
			if len(vals) != n {
				return nil, failure(codeParameterInvalid, "field %s has %d values, num_rows is %d", name, len(vals), n)
			}
			for i, v := range vals {
				rows[i].values[name] = v
			}
		case schemapb.DataType_FloatVector:
			vf := fd.GetVectors()
			vals := vf.GetFloatVector().GetData()
			if int(vf.GetDim()) != c.dim {
				return nil, failure(codeParameterInvalid, "the dim (%d) of field data(%s) is not equal to schema dim (%d)", vf.GetDim(), name, c.dim)
			}
			if len(vals) != n*c.dim {
				return nil, failure(codeParameterInvalid, "field %s has %d floats, want %d rows x %d", name, len(vals), n, c.dim)
			}
			for i := range rows {
				v := slices.Clone(vals[i*c.dim : (i+1)*c.dim])
				for _, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						return nil, failure(codeParameterInvalid, "field %s row %d: the vector holds NaN or Inf", name, i)
					}
				}
				rows[i].values[name] = v
			}
		}
	}
	for name := range c.fields {
		if !given[name] {
			return nil, failure(codeParameterInvalid, "field %s not passed", name)
		}
	}
	return rows, nil
}

// Delete removes the rows an expression selects.
func (s *Server) Delete(_ context.Context, req *milvuspb.DeleteRequest) (*milvuspb.MutationResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return &milvuspb.MutationResult{Status: st}, nil
	}
	if st := checkPartition(req.GetPartitionName()); st != nil {
		return &milvuspb.MutationResult{Status: st}, nil
	}
	if req.GetExpr() == "" {
		return &milvuspb.MutationResult{Status: failure(codeParameterInvalid, "delete needs an expression")}, nil
	}
	pred, err := c.compile(req.GetExpr())
	if err != nil {
		return &milvuspb.MutationResult{Status: failure(codeParameterInvalid, "%v", err)}, nil
	}
	var ids []string
	for id, r := range c.rows {
		if pred(r) {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		delete(c.rows, id)
	}
	s.ts++
	return &milvuspb.MutationResult{Status: ok(), IDs: strIDs(ids), DeleteCnt: int64(len(ids)), Timestamp: s.ts}, nil
}

// Search ranks the rows an expression selects by brute force with the index's metric.
func (s *Server) Search(_ context.Context, req *milvuspb.SearchRequest) (*milvuspb.SearchResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guarantees = append(s.guarantees, req.GetGuaranteeTimestamp())
	res, st := s.search(req)
	if st != nil {
		return &milvuspb.SearchResults{Status: st}, nil
	}
	return &milvuspb.SearchResults{Status: ok(), Results: res, CollectionName: req.GetCollectionName()}, nil
}

func (s *Server) search(req *milvuspb.SearchRequest) (*schemapb.SearchResultData, *commonpb.Status) {
	c, st := s.readable(req.GetCollectionName(), req.GetPartitionNames())
	if st != nil {
		return nil, st
	}
	if req.GetDslType() != commonpb.DslType_BoolExprV1 {
		return nil, failure(codeParameterInvalid, "dsl type %s is not supported", req.GetDslType())
	}
	params := map[string]string{}
	for _, kv := range req.GetSearchParams() {
		params[kv.GetKey()] = kv.GetValue()
	}
	if f := params["anns_field"]; f != "" && f != c.vec.GetName() {
		return nil, failure(codeParameterInvalid, "anns_field %q is not the vector field %s", f, c.vec.GetName())
	}
	if params["group_by_field"] != "" {
		return nil, failure(codeParameterInvalid, "group_by_field is not supported by the fake")
	}
	topK, err := strconv.Atoi(params["topk"])
	if err != nil || topK < 1 || topK > maxTopK {
		return nil, failure(codeParameterInvalid, "topk %q should be in range [1, %d]", params["topk"], maxTopK)
	}
	offset := 0
	if o := params["offset"]; o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 {
			return nil, failure(codeParameterInvalid, "bad offset %q", o)
		}
	}
	metric := c.index.params["metric_type"]
	if m := params["metric_type"]; m != "" && m != metric {
		return nil, failure(codeParameterInvalid, "metric type not match: invalid parameter[expected=%s][actual=%s]", metric, m)
	}
	if sp := params["params"]; sp != "" {
		var p map[string]any
		if err := json.Unmarshal([]byte(sp), &p); err != nil {
			return nil, failure(codeParameterInvalid, "search params %q: %v", sp, err)
		}
		if ef, set := p["ef"].(float64); set && c.index.params["index_type"] == "HNSW" && int(ef) < topK {
			return nil, failure(codeParameterInvalid, "ef(%d) should be larger than k(%d)", int(ef), topK)
		}
	}
	if rd := params["round_decimal"]; rd != "" && rd != "-1" {
		return nil, failure(codeParameterInvalid, "round_decimal %s is not supported by the fake", rd)
	}
	queries, st := c.decodePlaceholders(req.GetPlaceholderGroup())
	if st != nil {
		return nil, st
	}
	if n := req.GetNq(); n != 0 && n != int64(len(queries)) {
		return nil, failure(codeParameterInvalid, "nq %d but %d vectors", n, len(queries))
	}
	pred, err := c.compile(req.GetDsl())
	if err != nil {
		return nil, failure(codeParameterInvalid, "%v", err)
	}
	outputs, st := c.outputFields(req.GetOutputFields())
	if st != nil {
		return nil, st
	}

	var candidates []row
	for _, r := range c.rows {
		if pred(r) {
			candidates = append(candidates, r)
		}
	}
	res := &schemapb.SearchResultData{NumQueries: int64(len(queries)), TopK: int64(topK), OutputFields: outputs}
	var ids []string
	var found []row
	for _, q := range queries {
		type scored struct {
			r     row
			score float32
		}
		ranked := make([]scored, len(candidates))
		for i, r := range candidates {
			ranked[i] = scored{r, score(metric, q, r.values[c.vec.GetName()].([]float32))}
		}
		slices.SortFunc(ranked, func(a, b scored) int {
			if a.score != b.score {
				if (metric == "L2") == (a.score < b.score) {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.r.seq, b.r.seq)
		})
		ranked = ranked[min(offset, len(ranked)):]
		ranked = ranked[:min(topK, len(ranked))]
		for _, sc := range ranked {
			ids = append(ids, sc.r.values[c.pk.GetName()].(string))
			res.Scores = append(res.Scores, sc.score)
			found = append(found, sc.r)
		}
		res.Topks = append(res.Topks, int64(len(ranked)))
	}
	res.Ids = strIDs(ids)
	res.FieldsData = c.columns(outputs, found)
	return res, nil
}

// readable is the collection, if it exists and is loaded, for a read of the default partition.
func (s *Server) readable(name string, partitions []string) (*collection, *commonpb.Status) {
	c, st := s.lookup(name)
	if st != nil {
		return nil, st
	}
	if !c.loaded {
		return nil, failure(codeCollectionNotLoad, "collection not loaded[collection=%s]", name)
	}
	for _, p := range partitions {
		if st := checkPartition(p); st != nil {
			return nil, st
		}
	}
	return c, nil
}

// decodePlaceholders reads the query vectors: one placeholder of little-endian float32 vectors.
func (c *collection) decodePlaceholders(b []byte) ([][]float32, *commonpb.Status) {
	var pg commonpb.PlaceholderGroup
	if err := proto.Unmarshal(b, protoadapt.MessageV2Of(&pg)); err != nil {
		return nil, failure(codeParameterInvalid, "placeholder group: %v", err)
	}
	if len(pg.GetPlaceholders()) != 1 {
		return nil, failure(codeParameterInvalid, "want 1 placeholder, got %d", len(pg.GetPlaceholders()))
	}
	ph := pg.GetPlaceholders()[0]
	if ph.GetType() != commonpb.PlaceholderType_FloatVector {
		return nil, failure(codeParameterInvalid, "placeholder type %s is not supported by the fake", ph.GetType())
	}
	if len(ph.GetValues()) == 0 {
		return nil, failure(codeParameterInvalid, "no query vector")
	}
	queries := make([][]float32, len(ph.GetValues()))
	for i, raw := range ph.GetValues() {
		if len(raw) != 4*c.dim {
			return nil, failure(codeParameterInvalid, "the dimension of the vector (%d) is not equal to schema dim (%d)", len(raw)/4, c.dim)
		}
		q := make([]float32, c.dim)
		for j := range q {
			q[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		queries[i] = q
	}
	return queries, nil
}

// score is what Milvus reports: cosine or inner product (higher is nearer), or squared L2
// distance (lower is nearer).
func score(metric string, a, b []float32) float32 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	switch metric {
	case "IP":
		return float32(dot)
	case "L2":
		return float32(l2)
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return float32(dot / math.Sqrt(na*nb))
}

// outputFields checks and expands requested output fields ("*" is every field).
func (c *collection) outputFields(names []string) ([]string, *commonpb.Status) {
	var out []string
	for _, n := range names {
		if n == "*" {
			for _, f := range c.schema.GetFields() {
				out = append(out, f.GetName())
			}
			continue
		}
		if _, found := c.fields[n]; !found {
			return nil, failure(codeParameterInvalid, "field %s not exist", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// columns lays rows out as field data, one column per name.
func (c *collection) columns(names []string, rows []row) []*schemapb.FieldData {
	cols := make([]*schemapb.FieldData, 0, len(names))
	for _, name := range names {
		f := c.fields[name]
		fd := &schemapb.FieldData{Type: f.GetDataType(), FieldName: name, FieldId: f.GetFieldID()}
		switch f.GetDataType() {
		case schemapb.DataType_VarChar:
			vals := make([]string, len(rows))
			for i, r := range rows {
				vals[i] = r.values[name].(string)
			}
			fd.Field = &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
				Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: vals}}}}
		case schemapb.DataType_Int64:
			vals := make([]int64, len(rows))
			for i, r := range rows {
				vals[i] = r.values[name].(int64)
			}
			fd.Field = &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
				Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: vals}}}}
		case schemapb.DataType_FloatVector:
			vals := make([]float32, 0, len(rows)*c.dim)
			for _, r := range rows {
				vals = append(vals, r.values[name].([]float32)...)
			}
			fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(c.dim),
				Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: vals}}}}
		}
		cols = append(cols, fd)
	}
	return cols
}

// Query returns the rows an expression selects (in write order), or with output field
// "count(*)" only their number. Without a count, an empty expression needs a limit, as in Milvus.
func (s *Server) Query(_ context.Context, req *milvuspb.QueryRequest) (*milvuspb.QueryResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guarantees = append(s.guarantees, req.GetGuaranteeTimestamp())
	c, st := s.readable(req.GetCollectionName(), req.GetPartitionNames())
	if st != nil {
		return &milvuspb.QueryResults{Status: st}, nil
	}
	pred, err := c.compile(req.GetExpr())
	if err != nil {
		return &milvuspb.QueryResults{Status: failure(codeParameterInvalid, "%v", err)}, nil
	}
	var matched []row
	for _, r := range c.rows {
		if pred(r) {
			matched = append(matched, r)
		}
	}

	if slices.Contains(req.GetOutputFields(), "count(*)") {
		if len(req.GetOutputFields()) != 1 {
			return &milvuspb.QueryResults{Status: failure(codeParameterInvalid, "count(*) cannot be combined with other output fields")}, nil
		}
		return &milvuspb.QueryResults{
			Status: ok(),
			FieldsData: []*schemapb.FieldData{{Type: schemapb.DataType_Int64, FieldName: "count(*)",
				Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
					Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{int64(len(matched))}}}}}}},
			CollectionName: c.name,
			OutputFields:   []string{"count(*)"},
		}, nil
	}

	params := map[string]string{}
	for _, kv := range req.GetQueryParams() {
		params[kv.GetKey()] = kv.GetValue()
	}
	limit, offset := -1, 0
	if l := params["limit"]; l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 {
			return &milvuspb.QueryResults{Status: failure(codeParameterInvalid, "bad limit %q", l)}, nil
		}
	}
	if o := params["offset"]; o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 {
			return &milvuspb.QueryResults{Status: failure(codeParameterInvalid, "bad offset %q", o)}, nil
		}
	}
	if req.GetExpr() == "" && limit < 0 {
		return &milvuspb.QueryResults{Status: failure(codeParameterInvalid, "empty expression should be used with limit")}, nil
	}
	outputs, st := c.outputFields(append([]string{c.pk.GetName()}, req.GetOutputFields()...))
	if st != nil {
		return &milvuspb.QueryResults{Status: st}, nil
	}
	slices.SortFunc(matched, func(a, b row) int { return cmp.Compare(a.seq, b.seq) })
	matched = matched[min(offset, len(matched)):]
	if limit >= 0 {
		matched = matched[:min(limit, len(matched))]
	}
	return &milvuspb.QueryResults{Status: ok(), FieldsData: c.columns(outputs, matched),
		CollectionName: c.name, OutputFields: outputs}, nil
}

func intParam(kvs []*commonpb.KeyValuePair, key string) (int, error) {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return strconv.Atoi(kv.GetValue())
		}
	}
	return 0, fmt.Errorf("no %s", key)
}

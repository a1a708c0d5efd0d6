// Package milvusfake is an in-process Milvus for tests: a gRPC server on a loopback port that
// answers the RPCs github.com/milvus-io/milvus-sdk-go/v2 makes for the milvus store, keeps rows
// in memory and searches them brute force (COSINE, IP, L2). It enforces what a real server
// would refuse (vector dimension, VarChar max_length, one row per primary key, a loaded
// collection before a search) and understands only the filter forms the store writes (==, in
// [...], >=, and); anything else fails loudly with an error status rather than being guessed at.
// Every read is Strong: the fake never serves stale data. It knows nothing about the store.
package milvusfake

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Milvus error codes (Status.code) the fake answers with, and their legacy ErrorCode twins.
const (
	codeCollectionNotFound = 100
	codeCollectionNotLoad  = 101
	codeIndexNotFound      = 700
	codeParameterInvalid   = 1100
	codeUnexpected         = 5 // "service internal error"
)

// maxRecvMsgSize is the Milvus proxy's default request limit (proxy.grpc.serverMaxRecvSize).
const maxRecvMsgSize = 64 << 20

// Server is a fake Milvus. Its methods are safe for concurrent use.
type Server struct {
	milvuspb.UnimplementedMilvusServiceServer

	lis   net.Listener
	grpc  *grpc.Server
	token string // when set, the authorization every call must carry (see WithToken)

	mu          sync.Mutex
	collections map[string]*collection
	nextID      int64
	ts          uint64
	faults      []fault
	calls       map[string]int
	guarantees  []uint64
}

type fault struct {
	n      int
	code   codes.Code       // a gRPC error, or
	status *commonpb.Status // an error status inside an otherwise empty response
}

// Option configures a Server.
type Option func(*Server)

// WithToken makes every call carry this token, as the SDK sends it: "user:password" for
// Username/Password, or the API key itself. Other calls fail with Unauthenticated.
func WithToken(token string) Option {
	return func(s *Server) { s.token = token }
}

// Start serves a new fake on 127.0.0.1 at a free port.
func Start(opts ...Option) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("milvusfake: listen: %w", err)
	}
	s := &Server{
		lis:         lis,
		collections: map[string]*collection{},
		calls:       map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	s.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(s.intercept), grpc.MaxRecvMsgSize(maxRecvMsgSize),
		// As a Milvus proxy does: the SDK pings an idle connection every few seconds, and the
		// gRPC default (one ping in 5 minutes, none without a call under way) answered the
		// second ping with a GOAWAY ("too_many_pings") and a logged error, every half minute.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	milvuspb.RegisterMilvusServiceServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(lis) }()
	return s, nil
}

// New starts a fake for a test and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Addr is the host:port to give the SDK.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Stop closes the listener and every connection at once.
func (s *Server) Stop() { s.grpc.Stop() }

// FailNext makes the next n calls (of any RPC) fail with a gRPC error of code, as a proxy that
// is down, overloaded or timing out would.
func (s *Server) FailNext(n int, code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{n: n, code: code})
}

// FailNextStatus makes the next n calls answer with st as their response status, the way Milvus
// reports most failures (rate limits, a node not ready) rather than as gRPC errors.
func (s *Server) FailNextStatus(n int, st *commonpb.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{n: n, status: st})
}

// Calls counts the calls of one RPC by name ("Search", "Connect"), faults included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// GuaranteeTimestamps lists the guarantee timestamp of every Search and Query so far, in order.
// The SDK sends 0 for Strong consistency, 1 for Eventually and 2 for Bounded.
func (s *Server) GuaranteeTimestamps() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.guarantees...)
}

// Rows is how many rows the collection holds (-1 if it does not exist).
func (s *Server) Rows(collection string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.collections[collection]
	if !ok {
		return -1
	}
	return len(c.rows)
}

// intercept counts calls, checks the token and injects faults.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	s.mu.Lock()
	s.calls[method]++
	var f *fault
	if len(s.faults) > 0 {
		f = &fault{code: s.faults[0].code, status: s.faults[0].status}
		if s.faults[0].n--; s.faults[0].n <= 0 {
			s.faults = s.faults[1:]
		}
	}
	s.mu.Unlock()

	if s.token != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		want := base64.StdEncoding.EncodeToString([]byte(s.token))
		if got := md.Get("authorization"); len(got) != 1 || got[0] != want {
			return nil, status.Error(codes.Unauthenticated, "auth check failure, please check username and password are correct")
		}
	}
	if f != nil {
		if f.status != nil {
			return responseWithStatus(method, f.status)
		}
		return nil, status.Errorf(f.code, "milvusfake: injected %s", f.code)
	}
	return handler(ctx, req)
}

// responseWithStatus builds the RPC's empty response carrying st.
func responseWithStatus(method string, st *commonpb.Status) (any, error) {
	m, ok := reflect.TypeFor[milvuspb.MilvusServiceServer]().MethodByName(method)
	if !ok {
		return nil, status.Errorf(codes.Internal, "milvusfake: no method %s", method)
	}
	out := reflect.New(m.Type.Out(0).Elem())
	if resp, ok := out.Interface().(*commonpb.Status); ok {
		*resp = commonpb.Status{ErrorCode: st.ErrorCode, Code: st.Code, Reason: st.Reason, Retriable: st.Retriable}
		return resp, nil
	}
	field := out.Elem().FieldByName("Status")
	if !field.IsValid() {
		return nil, status.Errorf(codes.Internal, "milvusfake: %s's response has no status", method)
	}
	field.Set(reflect.ValueOf(st))
	return out.Interface(), nil
}

// failure is the Status of a refused call; the legacy ErrorCode is what the SDK checks.
func failure(code int32, format string, args ...any) *commonpb.Status {
	legacy := commonpb.ErrorCode_UnexpectedError
	switch code {
	case codeCollectionNotFound:
		legacy = commonpb.ErrorCode_CollectionNotExists
	case codeIndexNotFound:
		legacy = commonpb.ErrorCode_IndexNotExist
	case codeParameterInvalid:
		legacy = commonpb.ErrorCode_IllegalArgument
	}
	return &commonpb.Status{ErrorCode: legacy, Code: code, Reason: "milvusfake: " + fmt.Sprintf(format, args...)}
}

func ok() *commonpb.Status { return &commonpb.Status{} }

// Connect must answer: when it is Unimplemented the SDK quietly turns off features.
func (s *Server) Connect(context.Context, *milvuspb.ConnectRequest) (*milvuspb.ConnectResponse, error) {
	return &milvuspb.ConnectResponse{
		Status:     ok(),
		ServerInfo: &commonpb.ServerInfo{BuildTags: "milvusfake", BuildTime: time.Now().String()},
		Identifier: 1,
	}, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)

type collection struct {
	id          int64
	name        string
	created     uint64
	schema      *schemapb.CollectionSchema
	fields      map[string]*schemapb.FieldSchema
	pk          *schemapb.FieldSchema
	vec         *schemapb.FieldSchema
	dim         int
	consistency commonpb.ConsistencyLevel
	index       *index
	loaded      bool
	rows        map[string]row // by primary key
	seq         int64
}

type row struct {
	seq    int64          // write order, to break ties the same way every time
	values map[string]any // string (VarChar), int64 (Int64) or []float32 (FloatVector)
}

type index struct {
	id     int64
	name   string
	field  string
	params map[string]string // index_type, metric_type, params
}

func (s *Server) lookup(name string) (*collection, *commonpb.Status) {
	c, found := s.collections[name]
	if !found {
		return nil, failure(codeCollectionNotFound, "collection not found[collection=%s]", name)
	}
	return c, nil
}

// HasCollection reports whether the collection exists.
func (s *Server) HasCollection(_ context.Context, req *milvuspb.HasCollectionRequest) (*milvuspb.BoolResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := s.collections[req.GetCollectionName()]
	return &milvuspb.BoolResponse{Status: ok(), Value: found}, nil
}

// CreateCollection checks the schema the way Milvus would for the types the fake supports
// (VarChar primary key, VarChar, Int64, one FloatVector) and refuses the rest.
func (s *Server) CreateCollection(_ context.Context, req *milvuspb.CreateCollectionRequest) (*commonpb.Status, error) {
	sch := &schemapb.CollectionSchema{}
	if err := proto.Unmarshal(req.GetSchema(), protoadapt.MessageV2Of(sch)); err != nil {
		return failure(codeParameterInvalid, "schema: %v", err), nil
	}
	name := req.GetCollectionName()
	if !nameRE.MatchString(name) {
		return failure(codeParameterInvalid, "invalid collection name %q", name), nil
	}
	if sch.GetName() != name {
		return failure(codeParameterInvalid, "schema name %q differs from collection name %q", sch.GetName(), name), nil
	}
	c, st := newCollection(sch)
	if st != nil {
		return st, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if old, exists := s.collections[name]; exists {
		// Like Milvus: the same schema again is fine, another one is not.
		if proto.Equal(protoadapt.MessageV2Of(old.schema), protoadapt.MessageV2Of(c.schema)) {
			return ok(), nil
		}
		return failure(codeParameterInvalid, "create duplicate collection with different parameters, collection: %s", name), nil
	}
	s.nextID++
	s.ts++
	c.id, c.name, c.created, c.consistency = s.nextID, name, s.ts, req.GetConsistencyLevel()
	s.collections[name] = c
	return ok(), nil
}

func newCollection(sch *schemapb.CollectionSchema) (*collection, *commonpb.Status) {
	if sch.GetEnableDynamicField() {
		return nil, failure(codeParameterInvalid, "dynamic fields are not supported by the fake")
	}
	c := &collection{
		schema: &schemapb.CollectionSchema{Name: sch.GetName(), Description: sch.GetDescription()},
		fields: map[string]*schemapb.FieldSchema{},
		rows:   map[string]row{},
	}
	for i, f := range sch.GetFields() {
		if !nameRE.MatchString(f.GetName()) {
			return nil, failure(codeParameterInvalid, "invalid field name %q", f.GetName())
		}
		if _, dup := c.fields[f.GetName()]; dup {
			return nil, failure(codeParameterInvalid, "duplicated field name %s", f.GetName())
		}
		f = &schemapb.FieldSchema{
			FieldID: int64(100 + i), Name: f.GetName(), IsPrimaryKey: f.GetIsPrimaryKey(),
			Description: f.GetDescription(), DataType: f.GetDataType(), TypeParams: f.GetTypeParams(),
			AutoID: f.GetAutoID(),
		}
		switch f.DataType {
		case schemapb.DataType_VarChar:
			if n, err := intParam(f.TypeParams, "max_length"); err != nil || n < 1 || n > 65535 {
				return nil, failure(codeParameterInvalid, "field %s: max_length must be 1 to 65535", f.Name)
			}
		case schemapb.DataType_Int64:
		case schemapb.DataType_FloatVector:
			if c.vec != nil {
				return nil, failure(codeParameterInvalid, "the fake supports one vector field, got %s and %s", c.vec.Name, f.Name)
			}
			dim, err := intParam(f.TypeParams, "dim")
			if err != nil || dim < 1 || dim > 32768 {
				return nil, failure(codeParameterInvalid, "field %s: dim must be 1 to 32768", f.Name)
			}
			c.vec, c.dim = f, dim
		default:
			return nil, failure(codeParameterInvalid, "field %s: data type %s is not supported by the fake", f.Name, f.DataType)
		}
		if f.IsPrimaryKey {
			switch {
			case c.pk != nil:
				return nil, failure(codeParameterInvalid, "there are more than one primary key")
			case f.DataType != schemapb.DataType_VarChar:
				return nil, failure(codeParameterInvalid, "the fake supports VarChar primary keys only, %s is %s", f.Name, f.DataType)
			case f.AutoID:
				return nil, failure(codeParameterInvalid, "auto id is not supported by the fake")
			}
			c.pk = f
		}
		c.fields[f.Name] = f
		c.schema.Fields = append(c.schema.Fields, f)
	}
	if c.pk == nil {
		return nil, failure(codeParameterInvalid, "primary key is not specified")
	}
	if c.vec == nil {
		return nil, failure(codeParameterInvalid, "schema does not contain vector field")
	}
	return c, nil
}

// DescribeCollection returns the schema; a missing collection is code 100.
func (s *Server) DescribeCollection(_ context.Context, req *milvuspb.DescribeCollectionRequest) (*milvuspb.DescribeCollectionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return &milvuspb.DescribeCollectionResponse{Status: st}, nil
	}
	return &milvuspb.DescribeCollectionResponse{
		Status:               ok(),
		Schema:               protoadapt.MessageV1Of(proto.Clone(protoadapt.MessageV2Of(c.schema))).(*schemapb.CollectionSchema),
		CollectionID:         c.id,
		CollectionName:       c.name,
		VirtualChannelNames:  []string{fmt.Sprintf("fake-dml_0_%dv0", c.id)},
		PhysicalChannelNames: []string{"fake-dml_0"},
		CreatedTimestamp:     c.created,
		ShardsNum:            1,
		ConsistencyLevel:     c.consistency,
		DbName:               "default",
	}, nil
}

// ShowCollections lists every collection, with 100 % in memory for loaded ones.
func (s *Server) ShowCollections(context.Context, *milvuspb.ShowCollectionsRequest) (*milvuspb.ShowCollectionsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &milvuspb.ShowCollectionsResponse{Status: ok()}
	for _, c := range s.collections {
		resp.CollectionNames = append(resp.CollectionNames, c.name)
		resp.CollectionIds = append(resp.CollectionIds, c.id)
		resp.CreatedTimestamps = append(resp.CreatedTimestamps, c.created)
		resp.CreatedUtcTimestamps = append(resp.CreatedUtcTimestamps, c.created)
		pct := int64(0)
		if c.loaded {
			pct = 100
		}
		resp.InMemoryPercentages = append(resp.InMemoryPercentages, pct)
		resp.QueryServiceAvailable = append(resp.QueryServiceAvailable, c.loaded)
	}
	return resp, nil
}

// DropCollection removes the collection and its rows; a missing one is no error.
func (s *Server) DropCollection(_ context.Context, req *milvuspb.DropCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.collections, req.GetCollectionName())
	return ok(), nil
}

// CreateIndex accepts one vector index per collection (index_type FLAT, IVF_FLAT, HNSW or
// AUTOINDEX; metric COSINE, IP or L2). The index is "built" at once.
func (s *Server) CreateIndex(_ context.Context, req *milvuspb.CreateIndexRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return st, nil
	}
	f, found := c.fields[req.GetFieldName()]
	switch {
	case !found:
		return failure(codeParameterInvalid, "cannot create index on non-exist field: %s", req.GetFieldName()), nil
	case f != c.vec:
		return failure(codeParameterInvalid, "the fake supports indexes on the vector field only, not %s", f.GetName()), nil
	}
	params := map[string]string{}
	for _, kv := range req.GetExtraParams() {
		params[kv.GetKey()] = kv.GetValue()
	}
	switch params["index_type"] {
	case "FLAT", "IVF_FLAT", "HNSW", "AUTOINDEX":
	default:
		return failure(codeParameterInvalid, "index type %q is not supported by the fake", params["index_type"]), nil
	}
	if params["metric_type"] == "" {
		params["metric_type"] = "COSINE" // Milvus 2.4's default
	}
	switch params["metric_type"] {
	case "COSINE", "IP", "L2":
	default:
		return failure(codeParameterInvalid, "metric type %q is not supported by the fake", params["metric_type"]), nil
	}
	name := req.GetIndexName()
	if name == "" {
		name = f.GetName()
	}
	if c.index != nil {
		if reflect.DeepEqual(c.index.params, params) && c.index.name == name {
			return ok(), nil
		}
		return failure(codeParameterInvalid, "at most one distinct index is allowed per field"), nil
	}
	s.nextID++
	c.index = &index{id: s.nextID, name: name, field: f.GetName(), params: params}
	return ok(), nil
}

// DescribeIndex describes the vector index, always finished; no index is code 700.
func (s *Server) DescribeIndex(_ context.Context, req *milvuspb.DescribeIndexRequest) (*milvuspb.DescribeIndexResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return &milvuspb.DescribeIndexResponse{Status: st}, nil
	}
	idx := c.index
	if idx == nil || (req.GetFieldName() != "" && req.GetFieldName() != idx.field) ||
		(req.GetIndexName() != "" && req.GetIndexName() != idx.name) {
		return &milvuspb.DescribeIndexResponse{Status: failure(codeIndexNotFound, "index not found[collection=%s]", c.name)}, nil
	}
	var params []*commonpb.KeyValuePair
	for _, k := range []string{"index_type", "metric_type", "params"} {
		if v, set := idx.params[k]; set {
			params = append(params, &commonpb.KeyValuePair{Key: k, Value: v})
		}
	}
	return &milvuspb.DescribeIndexResponse{Status: ok(), IndexDescriptions: []*milvuspb.IndexDescription{{
		IndexName:   idx.name,
		IndexID:     idx.id,
		Params:      params,
		FieldName:   idx.field,
		IndexedRows: int64(len(c.rows)),
		TotalRows:   int64(len(c.rows)),
		State:       commonpb.IndexState_Finished,
	}}}, nil
}

// LoadCollection loads at once; like Milvus it needs the vector index first.
func (s *Server) LoadCollection(_ context.Context, req *milvuspb.LoadCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return st, nil
	}
	if c.index == nil {
		return failure(codeIndexNotFound, "there is no vector index on field: [%s], please create index firstly: index not found", c.vec.GetName()), nil
	}
	c.loaded = true
	return ok(), nil
}

// GetLoadingProgress is 100 for a loaded collection, 0 otherwise.
func (s *Server) GetLoadingProgress(_ context.Context, req *milvuspb.GetLoadingProgressRequest) (*milvuspb.GetLoadingProgressResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return &milvuspb.GetLoadingProgressResponse{Status: st}, nil
	}
	if !c.loaded {
		return &milvuspb.GetLoadingProgressResponse{Status: failure(codeCollectionNotLoad, "collection not loaded[collection=%s]", c.name)}, nil
	}
	return &milvuspb.GetLoadingProgressResponse{Status: ok(), Progress: 100, RefreshProgress: 100}, nil
}

// GetLoadState says Loaded or NotLoad.
func (s *Server) GetLoadState(_ context.Context, req *milvuspb.GetLoadStateRequest) (*milvuspb.GetLoadStateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return &milvuspb.GetLoadStateResponse{Status: st}, nil
	}
	state := commonpb.LoadState_LoadStateNotLoad
	if c.loaded {
		state = commonpb.LoadState_LoadStateLoaded
	}
	return &milvuspb.GetLoadStateResponse{Status: ok(), State: state}, nil
}

// ReleaseCollection unloads the collection: searches and queries fail until it is loaded again.
func (s *Server) ReleaseCollection(_ context.Context, req *milvuspb.ReleaseCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.lookup(req.GetCollectionName())
	if st != nil {
		return st, nil
	}
	c.loaded = false
	return ok(), nil
}

// Flush has nothing to flush: rows live in memory.
func (s *Server) Flush(_ context.Context, req *milvuspb.FlushRequest) (*milvuspb.FlushResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range req.GetCollectionNames() {
		if _, st := s.lookup(name); st != nil {
			return &milvuspb.FlushResponse{Status: st}, nil
		}
	}
	return &milvuspb.FlushResponse{Status: ok(), DbName: "default"}, nil
}

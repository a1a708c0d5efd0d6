package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pipelinev1 "github.com/pipeline-dev/pipeline/gen/go/pipeline/v1"
	"github.com/pipeline-dev/pipeline/internal/config"
)

// scope is a set of permissions, one bit each, so a key's scopes and a method's need combine
// with a mask.
type scope uint8

const (
	scopeRead scope = 1 << iota
	scopeWrite
	scopeWorker
)

var scopeNames = map[string]scope{config.ScopeRead: scopeRead, config.ScopeWrite: scopeWrite, config.ScopeWorker: scopeWorker}

func (s scope) String() string {
	var names []string
	for _, name := range []string{config.ScopeRead, config.ScopeWrite, config.ScopeWorker} {
		if s&scopeNames[name] != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, "+")
}

// methodScopes is the one table of what each RPC needs. Worker keys reach WorkerService and
// nothing else, and only worker keys reach it: a leaked worker key reads no content, and a
// client key cannot forge progress. New refuses to start if a registered method is missing, so
// a new RPC cannot slip through unguarded.
var methodScopes = map[string]scope{
	pipelinev1.JobService_GetJob_FullMethodName:           scopeRead,
	pipelinev1.JobService_ListJobs_FullMethodName:         scopeRead,
	pipelinev1.JobService_ListJobDocuments_FullMethodName: scopeRead,
	pipelinev1.JobService_WatchJob_FullMethodName:         scopeRead,
	pipelinev1.JobService_CancelJob_FullMethodName:        scopeWrite,
	pipelinev1.JobService_RetryJob_FullMethodName:         scopeWrite,

	pipelinev1.ContentService_GetSource_FullMethodName:       scopeRead,
	pipelinev1.ContentService_ListSources_FullMethodName:     scopeRead,
	pipelinev1.ContentService_GetDocument_FullMethodName:     scopeRead,
	pipelinev1.ContentService_ListDocuments_FullMethodName:   scopeRead,
	pipelinev1.ContentService_CreateSource_FullMethodName:    scopeWrite,
	pipelinev1.ContentService_DeleteSource_FullMethodName:    scopeWrite,
	pipelinev1.ContentService_RefreshSource_FullMethodName:   scopeWrite,
	pipelinev1.ContentService_IngestDocuments_FullMethodName: scopeWrite,

	pipelinev1.SearchService_Search_FullMethodName: scopeRead,

	pipelinev1.SystemService_ListWorkers_FullMethodName: scopeRead,
	pipelinev1.SystemService_GetStats_FullMethodName:    scopeRead,

	pipelinev1.WorkerService_ReportProgress_FullMethodName: scopeWorker,
}

// openMethod is true for calls that never need a key: health probes and reflection (grpcurl).
func openMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
}

// checkMethodScopes fails when a method the server serves is neither open nor in methodScopes.
func checkMethodScopes(srv *grpc.Server) error {
	for service, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + service + "/" + m.Name
			if _, ok := methodScopes[full]; !ok && !openMethod(full) {
				return fmt.Errorf("server: %s has no entry in methodScopes", full)
			}
		}
	}
	return nil
}

// keyring holds the SHA-256 of each accepted key with its scopes; never a key itself.
type keyring []keyEntry

type keyEntry struct {
	digest [sha256.Size]byte
	scopes scope
}

// newKeyring builds the keyring of the configured keys, plus workerKey with the worker scope
// alone when there are configured keys to add it to (without any, auth is off).
func newKeyring(keys []config.APIKey, workerKey string) keyring {
	kr := make(keyring, 0, len(keys)+1)
	for _, k := range keys {
		var sc scope
		for _, name := range k.Scopes {
			sc |= scopeNames[name]
		}
		kr = append(kr, keyEntry{digest: k.Digest, scopes: sc})
	}
	if len(kr) > 0 && workerKey != "" {
		kr = append(kr, keyEntry{digest: sha256.Sum256([]byte(workerKey)), scopes: scopeWorker})
	}
	return kr
}

// lookup returns the digest of key and the scopes it holds, none if it is unknown. It compares
// against every entry whatever matches, so the time taken says nothing about which key (or how
// much of one) matched; hashing first makes every comparison the same length.
func (kr keyring) lookup(key string) ([sha256.Size]byte, scope) {
	sum := sha256.Sum256([]byte(key))
	var found int
	for i := range kr {
		eq := subtle.ConstantTimeCompare(sum[:], kr[i].digest[:])
		found |= subtle.ConstantTimeSelect(eq, int(kr[i].scopes), 0)
	}
	return sum, scope(found)
}

// NewWorkerKey returns a random key for workers running in the server's process (`dev`,
// `serve --workers=1`): give it to the server as Deps.WorkerKey and to the workers. It lives
// in memory only, so no configured key needs the worker scope or to be kept raw.
func NewWorkerKey() string {
	return "inproc-" + rand.Text()
}

// principal is the authenticated caller, put in the context by the auth interceptor.
type principal struct {
	digest [sha256.Size]byte
}

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

var errNoCredentials = status.Error(codes.Unauthenticated, "missing API key: send the header authorization: Bearer <key>")
var errBadCredentials = status.Error(codes.Unauthenticated, "invalid API key")

// authorize checks the caller's key against the method's scope and returns the context with
// the caller in it. Its errors never contain the key sent.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	if len(s.keys) == 0 || openMethod(method) {
		return ctx, nil
	}
	need, known := methodScopes[method]
	if !known { // New checks every served method is in the table; this is the fail-closed default
		return ctx, status.Errorf(codes.PermissionDenied, "%s is not open to API keys", method)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return ctx, errNoCredentials
	}
	scheme, key, ok := strings.Cut(vals[0], " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "bearer") || key == "" {
		return ctx, errNoCredentials
	}
	digest, has := s.keys.lookup(key)
	if has == 0 {
		return ctx, errBadCredentials
	}
	if has&need == 0 {
		return ctx, status.Errorf(codes.PermissionDenied, "this API key lacks the %s scope that %s needs (it has %s)", need, method, has)
	}
	return context.WithValue(ctx, principalKey{}, principal{digest: digest}), nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return next(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// contextStream is a server stream with a context of the interceptors' making.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

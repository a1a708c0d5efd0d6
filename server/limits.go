package server

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pipeline-dev/pipeline/internal/config"
)

// HTTP server timeouts. There is no ReadTimeout or WriteTimeout: a WatchJob over REST is one
// request that lasts as long as the job, and those would cut it. Unary calls are bounded by the
// RPC deadline instead.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpIdleTimeout       = 2 * time.Minute
)

// inprocNetwork is the network of the gateway's in-process connection (bufconn's).
const inprocNetwork = "bufconn"

// limiterCapacity bounds the rate limiter's memory: beyond it the least recently seen key or
// address loses its bucket, and starts again with a full one if it comes back.
const limiterCapacity = 10_000

// --- deadline

// deadlineUnary gives a unary call without a deadline the configured one, so a call whose client
// waits forever cannot hold a connection and a database query forever. Streams are exempt:
// WatchJob and ReportProgress last as long as their job.
func (s *Server) deadlineUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.rpcTimeout)
		defer cancel()
	}
	return next(ctx, req)
}

// --- rate limiting

// rateLimiter is a token bucket per caller, the callers kept in a bounded LRU list.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     *list.List               // most recently used first
}

type bucket struct {
	key     string
	limiter *rate.Limiter
}

// newRateLimiter returns nil, no limit, when perSecond is 0.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*list.Element{}, lru: list.New()}
}

// wait takes one token from key's bucket and returns 0, or returns how long until one is there
// without taking any.
func (rl *rateLimiter) wait(key string, now time.Time) time.Duration {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	el, ok := rl.buckets[key]
	if ok {
		rl.lru.MoveToFront(el)
	} else {
		el = rl.lru.PushFront(&bucket{key: key, limiter: rate.NewLimiter(rl.limit, rl.burst)})
		rl.buckets[key] = el
		if rl.lru.Len() > limiterCapacity {
			oldest := rl.lru.Back()
			rl.lru.Remove(oldest)
			delete(rl.buckets, oldest.Value.(*bucket).key)
		}
	}
	r := el.Value.(*bucket).limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// callerKey names the caller's bucket: its API key's digest, or without keys its address. REST
// calls reach gRPC through the in-process connection, whose peer is the gateway, so for them the
// address is the last X-Forwarded-For entry, the one the gateway itself appends from the HTTP
// request (entries before it come from the client and prove nothing).
func callerKey(ctx context.Context) string {
	if p, ok := principalFrom(ctx); ok {
		return "key:" + string(p.digest[:])
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "addr:unknown"
	}
	if p.Addr.Network() == inprocNetwork {
		md, _ := metadata.FromIncomingContext(ctx)
		if fwd := md.Get("x-forwarded-for"); len(fwd) > 0 {
			last := fwd[len(fwd)-1]
			return "addr:" + strings.TrimSpace(last[strings.LastIndex(last, ",")+1:])
		}
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		host = p.Addr.String()
	}
	return "addr:" + host
}

// limit refuses the call when its caller is over the rate, with a RetryInfo saying when to retry.
func (s *Server) limit(ctx context.Context) error {
	if s.limiter == nil {
		return nil
	}
	wait := s.limiter.wait(callerKey(ctx), time.Now())
	if wait == 0 {
		return nil
	}
	st := status.Newf(codes.ResourceExhausted, "rate limit exceeded: at most %g calls per second (burst %d) per API key (%s); retry in %s",
		float64(s.limiter.limit), s.limiter.burst, config.EnvName("rate-limit"), wait.Round(time.Millisecond))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}

func (s *Server) rateLimitUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := s.limit(ctx); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

// rateLimitStream counts a stream once, when it opens, whatever it then carries.
func (s *Server) rateLimitStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := s.limit(ss.Context()); err != nil {
		return err
	}
	return next(srv, ss)
}

// --- request size

// bodyLimitKey holds, in a REST request's context, whether its body went over the limit.
type bodyLimitKey struct{}

// limitBody caps REST request bodies at limit bytes. A body announced as larger is refused before
// it is read; one that turns out larger (chunked) fails the gateway's read, and gatewayError
// turns that failure into the same 413.
func limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeTooLarge(w, limit)
			return
		}
		hit := new(atomic.Bool)
		r = r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, hit))
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), hit: hit}
		next.ServeHTTP(w, r)
	})
}

type limitedBody struct {
	io.ReadCloser
	hit *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.hit.Store(true)
	}
	return n, err
}

// writeTooLarge answers 413 with the gateway's error body (a google.rpc.Status in JSON).
func writeTooLarge(w http.ResponseWriter, limit int64) {
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
		"code":    int(codes.ResourceExhausted),
		"message": fmt.Sprintf("request body larger than %d bytes (%s)", limit, config.EnvName("max-message-bytes")),
		"details": []any{},
	})
}

// gatewayError is the gateway's error handler: the default one, except that a body cut by
// limitBody is answered 413 rather than the gateway's 400 for a body it could not decode.
func (s *Server) gatewayError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if hit, ok := r.Context().Value(bodyLimitKey{}).(*atomic.Bool); ok && hit.Load() {
		writeTooLarge(w, int64(s.maxMessageBytes))
		return
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// limitsOf returns the limits in cfg with a default for any left at zero (a Config not made by
// config.Default).
func limitsOf(cfg config.Config) (maxMessageBytes int, rpcTimeout time.Duration) {
	def := config.Default()
	return cmp.Or(cfg.MaxMessageBytes, def.MaxMessageBytes), cmp.Or(cfg.RPCTimeout, def.RPCTimeout)
}

package client

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// RetryPolicy says how calls that fail with Unavailable are tried again. A call that is safe to
// repeat (see Idempotent) is retried whatever happened to the failed attempt. Any other call
// (IngestDocuments, CreateSource, RefreshSource, RetryJob, DeleteSource) is retried only when
// its failed attempt provably never left this process: no request header was handed to the
// connection, so the server cannot have seen it. Other codes are never retried. Streaming calls
// are retried while the stream is being opened; a stream that breaks later is the caller's to
// open again (WatchJob does).
type RetryPolicy struct {
	// MaxAttempts is how many times a call is tried in all, the first included. 0 means 6;
	// 1 turns retries off.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry; each further wait doubles, up to
	// MaxBackoff. Each wait is drawn between half and all of that. 0 means 100 ms.
	InitialBackoff time.Duration
	// MaxBackoff caps a wait. 0 means 2 s.
	MaxBackoff time.Duration
	// OnRetry, when set, is called before every retry with the method, the number of the attempt
	// that failed (from 1) and its error.
	OnRetry func(method string, attempt int, err error)
}

// DefaultRetryPolicy is what the zero RetryPolicy means: 6 attempts over about 3 s at most, which
// rides out a server restart or a connection being remade.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 6, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.InitialBackoff)
	return p
}

// Idempotent reports whether the method (a full gRPC method name, /package.Service/Method) is
// safe to repeat: reads (Get*, List*, Search*, Watch*, the health service's Check) and
// CancelJob, which is a no-op on a cancelled job. Every other method changes something in a way
// that a repeat would do twice (or, for DeleteSource, answer NotFound to a call that worked).
func Idempotent(fullMethod string) bool {
	name := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	if name == "CancelJob" {
		return true
	}
	for _, prefix := range []string{"Get", "List", "Search", "Watch", "Check"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// backoff returns the wait before retry number n (from 1).
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// again decides whether the failed attempt number attempt of method is retried, and waits
// before it. It reports false, without waiting, when the call must end with err.
func (p RetryPolicy) again(ctx context.Context, method string, attempt int, err error, mark *sendMark) bool {
	if status.Code(err) != codes.Unavailable || attempt >= p.MaxAttempts || ctx.Err() != nil {
		return false
	}
	if !Idempotent(method) && mark.sent.Load() {
		return false // the server may have acted on it
	}
	wait := p.backoff(attempt)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
		return false // no time left for another attempt; Unavailable says more than a timeout
	}
	if p.OnRetry != nil {
		p.OnRetry(method, attempt, err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (p RetryPolicy) unaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for attempt := 1; ; attempt++ {
			mark := &sendMark{}
			err := invoker(context.WithValue(ctx, sendMarkKey{}, mark), method, req, reply, cc, opts...)
			if err == nil || !p.again(ctx, method, attempt, err, mark) {
				return err
			}
		}
	}
}

func (p RetryPolicy) streamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		for attempt := 1; ; attempt++ {
			mark := &sendMark{}
			s, err := streamer(context.WithValue(ctx, sendMarkKey{}, mark), desc, cc, method, opts...)
			if err == nil || !p.again(ctx, method, attempt, err, mark) {
				return s, err
			}
		}
	}
}

// sendMark records whether an attempt's request header was handed to a connection. Until it is,
// nothing of the call can have reached the server.
type sendMark struct{ sent atomic.Bool }

type sendMarkKey struct{}

// sentTracker is a stats handler that sets the attempt's sendMark when grpc reports the request
// header out (stats.OutHeader). grpc reports it right after queueing the header for the
// connection, in the goroutine making the call, before the call can return; so an attempt that
// failed without the mark set never reached the server.
type sentTracker struct{}

func (*sentTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (*sentTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); !ok {
		return
	}
	if m, ok := ctx.Value(sendMarkKey{}).(*sendMark); ok {
		m.sent.Store(true)
	}
}

func (*sentTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (*sentTracker) HandleConn(context.Context, stats.ConnStats)                       {}

// Package retry runs an operation again after transient failures (errs.Transient), waiting
// longer each time: exponential backoff with jitter, honouring the Retry-After a server asked
// for. Permanent failures return at once.
package retry

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

// Policy says how often and how patiently to retry.
type Policy struct {
	// MaxRetries is how many times a transient failure is retried (so at most MaxRetries+1 tries).
	MaxRetries int
	// BaseDelay is the wait before the first retry. Defaults to 500ms.
	BaseDelay time.Duration
	// Factor multiplies the wait after each retry. Defaults to 1.5.
	Factor float64
	// MaxDelay caps one wait (Retry-After included). Defaults to 1m.
	MaxDelay time.Duration
}

// Delay is the wait before retry number n (from 1), before jitter and Retry-After.
func (p Policy) Delay(n int) time.Duration {
	base := cmp.Or(p.BaseDelay, 500*time.Millisecond)
	factor := cmp.Or(p.Factor, 1.5)
	d := time.Duration(float64(base) * math.Pow(factor, float64(n-1)))
	return min(d, cmp.Or(p.MaxDelay, time.Minute))
}

// Do calls fn until it succeeds, fails permanently, runs out of retries or ctx ends. It returns
// how many times fn ran and fn's last error.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error) (int, error) {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return attempt, nil
		}
		transient, after := errs.IsTransient(err)
		if !transient || attempt > p.MaxRetries || ctx.Err() != nil {
			return attempt, err
		}
		// ±20% jitter spreads out the retries of many workers hit by the same outage.
		wait := time.Duration(float64(p.Delay(attempt)) * (0.8 + 0.4*rand.Float64()))
		wait = min(max(wait, after), cmp.Or(p.MaxDelay, time.Minute))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, err
		case <-t.C:
		}
	}
}

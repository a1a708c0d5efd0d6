package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pipeline-dev/pipeline/internal/errs"
)

func TestRetriesTransientUpToMax(t *testing.T) {
	t.Parallel()
	p := Policy{MaxRetries: 3, BaseDelay: time.Millisecond}
	calls := 0
	n, err := p.Do(context.Background(), func(context.Context) error {
		calls++
		return errs.Transient(errors.New("503"), 0)
	})
	require.Error(t, err)
	require.Equal(t, 4, n, "one try and three retries")
	require.Equal(t, 4, calls)
}

func TestPermanentIsNotRetried(t *testing.T) {
	t.Parallel()
	n, err := Policy{MaxRetries: 3, BaseDelay: time.Millisecond}.Do(context.Background(), func(context.Context) error {
		return errors.New("invalid content")
	})
	require.EqualError(t, err, "invalid content")
	require.Equal(t, 1, n)
}

func TestSucceedsAfterTransient(t *testing.T) {
	t.Parallel()
	calls := 0
	n, err := Policy{MaxRetries: 3, BaseDelay: time.Millisecond}.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return errs.Transient(errors.New("429"), 0)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	start := time.Now()
	calls := 0
	_, err := Policy{MaxRetries: 1, BaseDelay: time.Millisecond}.Do(context.Background(), func(context.Context) error {
		calls++
		if calls == 1 {
			return errs.Transient(errors.New("429"), 150*time.Millisecond)
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

func TestBackoffGrowsByFactor(t *testing.T) {
	t.Parallel()
	p := Policy{BaseDelay: 100 * time.Millisecond, Factor: 1.5, MaxDelay: time.Second}
	require.Equal(t, 100*time.Millisecond, p.Delay(1))
	require.Equal(t, 150*time.Millisecond, p.Delay(2))
	require.Equal(t, 225*time.Millisecond, p.Delay(3))
	require.Equal(t, time.Second, p.Delay(20), "capped")
}

func TestStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := Policy{MaxRetries: 100, BaseDelay: time.Hour}.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return errs.Transient(errors.New("down"), 0)
	})
	require.Error(t, err)
	require.Equal(t, 1, calls)
}

package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// loadLoop makes exactly the calls asked for, from every caller, and stops at a failed one.
func TestLoadLoop(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	lat, wall, err := loadLoop(context.Background(), 4, 101, func(context.Context) error { calls.Add(1); return nil })
	require.NoError(t, err)
	require.Len(t, lat, 101)
	require.EqualValues(t, 101, calls.Load())
	require.Positive(t, wall)

	calls.Store(0)
	boom := errors.New("boom")
	_, _, err = loadLoop(context.Background(), 4, 1000, func(context.Context) error {
		if calls.Add(1) == 10 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Less(t, calls.Load(), int64(1000))
}

// The API case against a real server: both subjects make every call, every answer checks out,
// and the CPU figure is there (Postgres and Redis as in the project's tests).
func TestAPICase(t *testing.T) {
	t.Parallel()
	p, err := prepareAPI(t.Context(), &Env{Short: true, Runs: 1, Dir: t.TempDir(), Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.Len(t, p.Subjects, 3)
	for _, sub := range p.Subjects {
		s, err := sub.Run(t.Context(), true)
		require.NoError(t, err, sub.Name)
		require.EqualValues(t, 3000, s["calls"], sub.Name)
		require.Positive(t, s["calls/s"], sub.Name)
		require.Positive(t, s[apiCPUPerCall], sub.Name)
	}
}

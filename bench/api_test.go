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

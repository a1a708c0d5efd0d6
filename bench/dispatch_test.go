package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A tally is full when every job completed once; repeats are duplicates, unknown jobs and
// missing ones fail the check, and a drain without progress is a loss.
func TestTally(t *testing.T) {
	t.Parallel()
	tl := newTally(3)
	for _, i := range []int{2, 0, 2, 1} {
		tl.complete(i)
	}
	require.NoError(t, tl.wait(context.Background(), time.Second))
	require.NoError(t, tl.verify())
	require.Equal(t, int64(1), tl.dups.Load())

	short := newTally(2)
	short.complete(1)
	err := short.wait(context.Background(), 20*time.Millisecond)
	require.True(t, errors.Is(err, ErrCorrectness), "%v", err)
	require.True(t, errors.Is(short.verify(), ErrCorrectness))

	stray := newTally(1)
	stray.complete(5)
	stray.complete(0)
	require.True(t, errors.Is(stray.verify(), ErrCorrectness))
}

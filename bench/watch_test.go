package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// awaitSeq accepts the awaited update (after repeats of the last one) and calls an older
// update a reordering, a skipped or missing one a loss.
func TestAwaitSeq(t *testing.T) {
	t.Parallel()
	feed := func(seqs ...int64) chan watchEvent {
		ch := make(chan watchEvent, len(seqs))
		for _, s := range seqs {
			ch <- watchEvent{seq: s, at: time.Unix(s, 0)}
		}
		return ch
	}
	at, err := awaitSeq(feed(4, 4, 5), 4, 5, time.Second)
	require.NoError(t, err)
	require.Equal(t, time.Unix(5, 0), at)

	for name, ch := range map[string]chan watchEvent{
		"reordered": feed(3),
		"skipped":   feed(6),
		"missing":   feed(4),
	} {
		_, err := awaitSeq(ch, 4, 5, 10*time.Millisecond)
		require.True(t, errors.Is(err, ErrCorrectness), "%s: %v", name, err)
	}
	_, err = awaitSeq(feed(3), 4, 5, time.Second)
	require.ErrorContains(t, err, "reordered")
}

// closedLoops waits for each update before sending the next, and fails when one never comes.
func TestClosedLoops(t *testing.T) {
	t.Parallel()
	events := []chan watchEvent{make(chan watchEvent, 8), make(chan watchEvent, 8)}
	next := []int64{0, 10}
	echo := func(_ context.Context, j int, seq int64) (time.Time, error) {
		events[j] <- watchEvent{seq: seq, at: time.Now()}
		return time.Now(), nil
	}
	lat, _, err := closedLoops(context.Background(), events, next, 3, time.Second, echo)
	require.NoError(t, err)
	require.Len(t, lat, 6)
	require.Equal(t, []int64{3, 13}, next)

	drop := func(_ context.Context, j int, seq int64) (time.Time, error) {
		if seq != 15 {
			events[j] <- watchEvent{seq: seq, at: time.Now()}
		}
		return time.Now(), nil
	}
	_, _, err = closedLoops(context.Background(), events[1:], next[1:], 3, 50*time.Millisecond, drop)
	require.True(t, errors.Is(err, ErrCorrectness), fmt.Sprint(err))
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	require.Equal(t, 50.0, percentile(xs, 0.50))
	require.Equal(t, 99.0, percentile(xs, 0.99))
	require.Equal(t, 1.0, percentile(xs[:1], 0.99))
}

// openLoops sends on schedule whatever the updates do, measures from when a report was due,
// and fails on a skipped update.
func TestOpenLoops(t *testing.T) {
	t.Parallel()
	events := []chan watchEvent{make(chan watchEvent, 64), make(chan watchEvent, 64)}
	next := []int64{0, 10}
	const delay = 20 * time.Millisecond
	// Each update arrives delay after its report: the latencies are at least delay, and the
	// reports do not wait for the updates (all 2 x 20 done in well under 20 x delay).
	type report struct {
		seq int64
		at  time.Time
	}
	reports := []chan report{make(chan report, 64), make(chan report, 64)}
	for j := range reports {
		go func() { // delivers job j's updates in order, each delay after its report
			for r := range reports[j] {
				time.Sleep(time.Until(r.at.Add(delay)))
				events[j] <- watchEvent{seq: r.seq, at: time.Now()}
			}
		}()
	}
	defer func() {
		for _, r := range reports {
			close(r)
		}
	}()
	late := func(_ context.Context, j int, seq int64) (time.Time, error) {
		sent := time.Now()
		reports[j] <- report{seq, sent}
		return sent, nil
	}
	lat, wall, err := openLoops(context.Background(), events, next, 20, 4000, time.Second, late)
	require.NoError(t, err)
	require.Len(t, lat, 40)
	require.Equal(t, []int64{20, 30}, next)
	for _, l := range lat {
		require.GreaterOrEqual(t, l, float64(delay.Milliseconds()))
	}
	require.Less(t, wall, 10*delay, "the reports waited for their updates")

	drop := func(_ context.Context, j int, seq int64) (time.Time, error) {
		if seq != 33 {
			events[j] <- watchEvent{seq: seq, at: time.Now()}
		}
		return time.Now(), nil
	}
	_, _, err = openLoops(context.Background(), events[1:], next[1:], 5, 4000, 50*time.Millisecond, drop)
	require.True(t, errors.Is(err, ErrCorrectness), fmt.Sprint(err))
	require.Equal(t, []int64{30}, next[1:], "a failed run leaves the numbers as they were")
}

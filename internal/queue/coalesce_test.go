package queue

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// coalesced is a call of the coalescer test: its number, and the group send put it in.
type coalesced struct{ n, group int }

// TestCoalescerSendsTheCallsThatCameMeanwhileTogether: a lone call goes at once, alone; calls
// made while its round trip is under way wait for it and then go together, each told its
// group's outcome; once nothing waits, the next call goes at once again.
func TestCoalescerSendsTheCallsThatCameMeanwhileTogether(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		groups [][]int
	)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	c := newCoalescer(func(calls []*coalesced) {
		mu.Lock()
		g := len(groups)
		var ns []int
		for _, call := range calls {
			call.group = g
			ns = append(ns, call.n)
		}
		groups = append(groups, ns)
		mu.Unlock()
		if g == 0 {
			entered <- struct{}{}
			<-release // the first round trip is slow
		}
	})

	calls := make([]*coalesced, 5)
	for i := range calls {
		calls[i] = &coalesced{n: i, group: -1}
	}
	var wg sync.WaitGroup
	wg.Go(func() { <-c.start(calls[0]) })
	<-entered
	for _, call := range calls[1:4] {
		wg.Go(func() { <-c.start(call) })
	}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.waiting) == 3
	}, 5*time.Second, time.Millisecond, "the calls made meanwhile wait")
	close(release)
	wg.Wait()
	<-c.start(calls[4])

	require.Len(t, groups, 3)
	require.Equal(t, []int{0}, groups[0], "a lone call goes at once")
	require.ElementsMatch(t, []int{1, 2, 3}, groups[1], "the calls that came meanwhile go in one round trip")
	require.Equal(t, []int{4}, groups[2], "with nothing under way, a call goes at once")
	for i, want := range []int{0, 1, 1, 1, 2} {
		require.Equal(t, want, calls[i].group, "call %d was answered with its own group's outcome", i)
	}
	c.flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.False(t, c.busy, "the sending goroutine stops once nothing waits")
}

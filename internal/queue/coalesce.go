package queue

import "sync"

// coalescer sends calls to Redis in groups, one round trip each: a call made while a group is
// under way waits and goes with every other call that came meanwhile, in the group sent as soon
// as that one is back. A lone call goes at once, so nothing waits for a group to fill; under
// load, the slots' marker deletes and acknowledgements cost a round trip per group instead of
// one each. T is a pointer to a call, in which send records its outcome.
type coalescer[T any] struct {
	send func(calls []T) // one round trip for all the calls; records each call's outcome

	mu      sync.Mutex
	busy    bool // a goroutine is sending groups
	waiting []T
	sent    []chan struct{} // one per waiting call, closed once its group is back
}

func newCoalescer[T any](send func(calls []T)) *coalescer[T] {
	return &coalescer[T]{send: send}
}

// do sends call, alone or with the calls waiting with it, and returns once its group is back.
// The caller whose call went at once sends the groups that gathered meanwhile too, until none
// is left: no goroutine is started.
func (c *coalescer[T]) do(call T) {
	c.mu.Lock()
	if c.busy {
		sent := make(chan struct{})
		c.waiting = append(c.waiting, call)
		c.sent = append(c.sent, sent)
		c.mu.Unlock()
		<-sent
		return
	}
	c.busy = true
	c.mu.Unlock()
	c.send([]T{call})
	for {
		c.mu.Lock()
		calls, sent := c.waiting, c.sent
		c.waiting, c.sent = nil, nil
		if len(calls) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.send(calls)
		for _, ch := range sent {
			close(ch)
		}
	}
}

package queue

import "sync"

// coalescer sends calls to Redis in groups, one round trip each: a call made while a group is
// under way waits and goes with every other call that came meanwhile, in the group sent as soon
// as that one is back. A lone call goes at once, so nothing waits for a group to fill; under
// load, the slots' marker deletes and acknowledgements cost a round trip per group instead of
// one each. T is a pointer to a call, in which send records its outcome. The groups are sent by
// a goroutine that runs while calls are waiting, so a caller may go on while its call is under
// way, and wait for its outcome later or never.
type coalescer[T any] struct {
	send func(calls []T) // one round trip for all the calls; records each call's outcome

	mu      sync.Mutex
	busy    bool // the sending goroutine is running
	waiting []T
	sent    []chan struct{} // one per waiting call, closed once its group is back
	idle    chan struct{}   // closed when the sending goroutine stops; nil while none ever ran
}

func newCoalescer[T any](send func(calls []T)) *coalescer[T] {
	return &coalescer[T]{send: send}
}

// start queues call and returns at once, with a channel closed once call's group is back (and
// its outcome recorded in call).
func (c *coalescer[T]) start(call T) <-chan struct{} {
	sent := make(chan struct{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = append(c.waiting, call)
	c.sent = append(c.sent, sent)
	if !c.busy {
		c.busy = true
		c.idle = make(chan struct{})
		go c.run(c.idle)
	}
	return sent
}

// run sends the waiting calls, a group per round trip, until none is left.
func (c *coalescer[T]) run(idle chan struct{}) {
	defer close(idle)
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

// flush returns once every call started before it has been sent.
func (c *coalescer[T]) flush() {
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	if idle != nil {
		<-idle
	}
}

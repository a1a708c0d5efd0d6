package jobs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// groupCommitTimeout bounds one group's statement (and its retries one by one).
const groupCommitTimeout = 30 * time.Second

// grouper commits calls in groups: calls that arrive while a group's transaction is under way
// wait and go together in the next one, so that many workers claiming or finishing batches at
// once cost one transaction per group instead of one each, while a lone call goes at once. The
// next group starts as soon as the transaction before it is over, while that group is announced
// (committed). A transaction that has run stallAfter (a lock wait, a starved backend) no longer
// holds the waiting calls back: they start a group of their own beside it. At most maxInFlight
// groups are committed or announced at once. Each call names a batch; two calls for the same
// batch never share a group (the next group takes the second). Safe for concurrent use; it runs
// goroutines only while calls are waiting.
type grouper[Req, Res any] struct {
	maxCalls    int
	maxInFlight int
	stallAfter  time.Duration
	key         func(Req) uuid.UUID
	// commit runs one group and returns a result per call, in order, or an error for all. It is
	// given at most maxCalls calls, with distinct keys.
	commit func(ctx context.Context, reqs []Req) ([]Res, error)
	// retryAlone tells an error of a group of several calls that is worth trying again call by
	// call (one call's bad data, a lock conflict) from one that would fail them all again.
	retryAlone func(error) bool
	// committed, when set, runs after each successful commit with the group's results, once
	// its calls are answered, on the committing goroutine (e.g. to tell the Notifier about the
	// jobs the group changed, once for all of them). The callers do not wait for it: the
	// commit is what they wait for. Groups run it one at a time, in the order they were
	// answered: a call made after another's answer (a job's last finish after its first claim)
	// is announced after it, even when the groups' transactions overlap.
	committed func(ctx context.Context, reqs []Req, res []Res)
	// abandoned, when set, is given the result of each call committed after its caller went
	// away (e.g. to hand back a batch claimed for a worker that is no longer waiting for it).
	abandoned func(ctx context.Context, req Req, res Res)

	mu         sync.Mutex
	queue      []*groupCall[Req, Res]
	running    int           // goroutines committing or announcing groups
	committing int           // groups whose transaction is under way
	idle       chan struct{} // closed when running falls to 0; nil while none ever ran
	// announced is closed once the latest answered group has run committed; nil while none
	// has been answered.
	announced  chan struct{}
	lastStart  time.Time   // when the latest group was taken
	stallCheck *time.Timer // set while a check for a stalled transaction is due
}

// States of a groupCall: its caller is waiting, has its answer, or has gone away.
const (
	callWaiting int32 = iota
	callAnswered
	callAbandoned
)

type groupCall[Req, Res any] struct {
	req   Req
	state atomic.Int32
	done  chan struct{} // closed once answered
	res   Res
	err   error
}

// do commits req with whatever calls are waiting with it and returns its result. A caller that
// goes away while its call waits gets ctx's error; the call may still be committed.
func (g *grouper[Req, Res]) do(ctx context.Context, req Req) (Res, error) {
	c := &groupCall[Req, Res]{req: req, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	start := g.mayStart()
	if !start {
		g.armStallCheck()
	}
	g.mu.Unlock()
	if start {
		go g.run()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			var zero Res
			return zero, ctx.Err()
		}
		<-c.done // answered just now
	}
	return c.res, c.err
}

// mayStart reports whether a goroutine may start committing the waiting calls now, and counts it
// as running if so: when none runs; otherwise when fewer than maxInFlight run and no
// transaction is under way, or the latest has run stallAfter. Called with mu held.
func (g *grouper[Req, Res]) mayStart() bool {
	if g.running > 0 && (g.running >= g.maxInFlight || g.committing > 0 && time.Since(g.lastStart) < g.stallAfter) {
		return false
	}
	if g.running == 0 {
		g.idle = make(chan struct{})
	}
	g.running++
	return true
}

// armStallCheck makes sure that calls left waiting are looked at again once the latest group has
// run stallAfter, in case no other call comes to start a group for them. Called with mu held.
func (g *grouper[Req, Res]) armStallCheck() {
	if g.stallCheck != nil || g.running >= g.maxInFlight {
		return
	}
	g.stallCheck = time.AfterFunc(max(g.stallAfter-time.Since(g.lastStart), 0), func() {
		g.mu.Lock()
		g.stallCheck = nil
		start := false
		if len(g.queue) > 0 {
			if start = g.mayStart(); !start {
				g.armStallCheck()
			}
		}
		g.mu.Unlock()
		if start {
			go g.run()
		}
	})
}

// run commits groups of waiting calls until none is left. Once a group's transaction is over,
// calls that came meanwhile may start the next group on another goroutine while this one
// announces.
func (g *grouper[Req, Res]) run() {
	for {
		group := g.take()
		if group == nil {
			return
		}
		var after []func()
		g.commitGroup(group, &after)
		g.mu.Lock()
		g.committing--
		start := len(g.queue) > 0 && g.mayStart()
		g.mu.Unlock()
		if start {
			go g.run()
		}
		for _, f := range after {
			f()
		}
	}
}

// take removes the next group from the queue: up to maxCalls calls with distinct keys, skipping
// calls whose caller has gone; nil (and the calling goroutine stops) when none is waiting.
func (g *grouper[Req, Res]) take() []*groupCall[Req, Res] {
	g.mu.Lock()
	defer g.mu.Unlock()
	var group []*groupCall[Req, Res]
	var keys map[uuid.UUID]bool
	rest := g.queue[:0]
	for _, c := range g.queue {
		switch {
		case c.state.Load() == callAbandoned:
		case len(group) == g.maxCalls:
			rest = append(rest, c)
		case keys[g.key(c.req)]:
			rest = append(rest, c) // same batch as one in this group: the next group
		default:
			if keys == nil {
				keys = make(map[uuid.UUID]bool)
			}
			keys[g.key(c.req)] = true
			group = append(group, c)
		}
	}
	clear(g.queue[len(rest):]) // let the taken calls go
	g.queue = rest
	if len(g.queue) == 0 {
		g.queue = nil
	}
	if group != nil {
		g.committing++
		g.lastStart = time.Now()
	} else {
		g.running--
		if g.running == 0 {
			close(g.idle)
		}
	}
	return group
}

// flush waits until no group is being committed or announced (or ctx ends).
func (g *grouper[Req, Res]) flush(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitGroup commits a group and answers its calls, and adds to after what is left to do once
// the transaction is over (hand over what callers that left were given, announce). When a group
// of several fails for a reason worth it, each call still waiting is tried alone, so that one
// call cannot fail the others.
func (g *grouper[Req, Res]) commitGroup(group []*groupCall[Req, Res], after *[]func()) {
	ctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
	defer cancel()
	reqs := make([]Req, len(group))
	for i, c := range group {
		reqs[i] = c.req
	}
	res, err := g.commit(ctx, reqs)
	if err != nil && len(group) > 1 && g.retryAlone(err) {
		for _, c := range group {
			if c.state.Load() != callAbandoned {
				g.commitGroup([]*groupCall[Req, Res]{c}, after)
			}
		}
		return
	}
	// The group's place among the announcements is taken before anyone has an answer, so that
	// a group made of calls that came after these answers is announced after this one.
	var prev, announced chan struct{}
	if err == nil && g.committed != nil {
		announced = make(chan struct{})
		g.mu.Lock()
		prev, g.announced = g.announced, announced
		g.mu.Unlock()
	}
	var left []int // calls committed after their callers went away
	for i, c := range group {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		if c.state.CompareAndSwap(callWaiting, callAnswered) {
			close(c.done)
		} else if err == nil {
			left = append(left, i)
		}
	}
	if len(left) == 0 && announced == nil {
		return
	}
	*after = append(*after, func() {
		ctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
		defer cancel()
		if announced != nil {
			if prev != nil {
				<-prev
			}
			g.committed(ctx, reqs, res)
			close(announced)
		}
		if g.abandoned != nil {
			for _, i := range left {
				g.abandoned(ctx, reqs[i], res[i])
			}
		}
	})
}

package builtin

import (
	"context"
	"sync"
	"time"
)

// hosts keeps a crawl's per-host state: when the next request may start, and each origin's
// robots.txt. It is shared by the crawl's fetches.
type hosts struct {
	baseDelay time.Duration

	mu     sync.Mutex
	polite map[string]*politeness  // by host[:port]
	robots map[string]*robotsEntry // by scheme://host[:port]
}

type politeness struct {
	next  time.Time     // earliest start of the next request
	delay time.Duration // gap between starts: the base delay or the host's Crawl-delay
}

// robotsEntry is one origin's robots.txt: fetched by the first fetch that needs it, waited
// for by the others.
type robotsEntry struct {
	done  chan struct{} // closed when rules is set
	rules *robotsRules
}

func newHosts(baseDelay time.Duration) *hosts {
	return &hosts{
		baseDelay: baseDelay,
		polite:    make(map[string]*politeness),
		robots:    make(map[string]*robotsEntry),
	}
}

// wait blocks until a request to host may start and books that slot.
func (h *hosts) wait(ctx context.Context, host string) error {
	h.mu.Lock()
	p := h.polite[host]
	if p == nil {
		p = &politeness{delay: h.baseDelay}
		h.polite[host] = p
	}
	now := time.Now()
	start := now
	if p.next.After(now) {
		start = p.next
	}
	p.next = start.Add(p.delay)
	h.mu.Unlock()

	d := start.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// raiseDelay makes host's gap between requests at least d.
func (h *hosts) raiseDelay(host string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.polite[host]
	if p == nil {
		p = &politeness{delay: h.baseDelay}
		h.polite[host] = p
	}
	if d > p.delay {
		p.next = p.next.Add(d - p.delay)
		p.delay = d
	}
}

// robotsFor returns origin's rules, calling fetch for them if no one has yet. Waiters give up
// when ctx ends.
func (h *hosts) robotsFor(ctx context.Context, origin string, fetch func() *robotsRules) (*robotsRules, error) {
	h.mu.Lock()
	e := h.robots[origin]
	if e == nil {
		e = &robotsEntry{done: make(chan struct{})}
		h.robots[origin] = e
		h.mu.Unlock()
		e.rules = fetch()
		close(e.done)
		return e.rules, nil
	}
	h.mu.Unlock()
	select {
	case <-e.done:
		return e.rules, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

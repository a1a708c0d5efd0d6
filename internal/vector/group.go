package vector

import (
	"context"
	"sync/atomic"
	"time"
)

// WriteGroup marks writes a caller makes at the same time, each from its own goroutine (a
// worker storing the documents it has ready, one upsert each): a store that makes concurrent
// writes durable together (the embedded store's group commit) may wait until every write of the
// group has reached it before it syncs, so that the group shares one sync instead of the first
// write syncing alone while the others are still on their way. Each write stays a call of its
// own (its errors, metrics and spans). A store that does not know groups ignores them.
//
// The caller makes exactly n write calls with the group's context (Context), one per member, at
// once; a store calls Arrive once per such call, whatever its outcome. A member that never comes
// only delays the others by a bound (see Wait): it cannot hold them up for good.
type WriteGroup struct {
	left atomic.Int64
	all  chan struct{}
}

// NewWriteGroup returns a group of n writes.
func NewWriteGroup(n int) *WriteGroup {
	g := &WriteGroup{all: make(chan struct{})}
	g.left.Store(int64(n))
	if n <= 0 {
		close(g.all)
	}
	return g
}

type writeGroupKey struct{}

// Context returns ctx carrying the group, for one member's write call; ctx itself for a nil group.
func (g *WriteGroup) Context(ctx context.Context) context.Context {
	if g == nil {
		return ctx
	}
	return context.WithValue(ctx, writeGroupKey{}, g)
}

// WriteGroupOf returns the group ctx carries, or nil (a nil group is a write on its own).
func WriteGroupOf(ctx context.Context) *WriteGroup {
	g, _ := ctx.Value(writeGroupKey{}).(*WriteGroup)
	return g
}

// Arrive says one member's write reached the store (written, refused, or nothing to write).
func (g *WriteGroup) Arrive() {
	if g != nil && g.left.Add(-1) == 0 {
		close(g.all)
	}
}

// Wait returns once every member has arrived, or after max at the latest.
func (g *WriteGroup) Wait(max time.Duration) {
	if g == nil {
		return
	}
	select {
	case <-g.all:
		return
	default:
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-g.all:
	case <-t.C:
	}
}

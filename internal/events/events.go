// Package events fans job-change notices out to watchers. A change is published on one Redis
// pub/sub channel so that every server replica hears it, and delivered at once to watchers in
// this process. Notices are hints ("job X is at version N"), never data: watchers re-read the
// job from Postgres, and poll as well, so a lost notice delays a watcher but never misleads it.
// The package knows job ids and versions, nothing else about jobs.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Bus publishes and delivers job-change notices. The zero value is not usable; call New.
type Bus struct {
	rdb     *redis.Client
	channel string
	log     *slog.Logger

	mu   sync.Mutex
	subs map[uuid.UUID]map[*Subscription]struct{}
}

// New returns a bus on rdb whose channel name starts with prefix (the deployment's Redis prefix).
func New(rdb *redis.Client, prefix string, log *slog.Logger) *Bus {
	return &Bus{
		rdb:     rdb,
		channel: prefix + "pipeline:job-events",
		log:     log,
		subs:    make(map[uuid.UUID]map[*Subscription]struct{}),
	}
}

// Subscription receives a value on C whenever its job may have changed. C has room for one
// value and sends never block, so a slow watcher sees several changes as one wake-up and never
// holds up anyone else.
type Subscription struct {
	C     <-chan struct{}
	c     chan struct{}
	bus   *Bus
	jobID uuid.UUID
}

// Subscribe starts delivering notices about one job. Call Close when done.
func (b *Bus) Subscribe(jobID uuid.UUID) *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, bus: b, jobID: jobID}
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.subs[jobID]
	if set == nil {
		set = make(map[*Subscription]struct{})
		b.subs[jobID] = set
	}
	set[s] = struct{}{}
	return s
}

// Close stops the subscription. It is safe to call twice.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if set := b.subs[s.jobID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.subs, s.jobID)
		}
	}
}

// Watchers returns how many subscriptions are open (for tests and metrics).
func (b *Bus) Watchers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, set := range b.subs {
		n += len(set)
	}
	return n
}

func (b *Bus) deliver(jobID uuid.UUID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[jobID] {
		select {
		case s.c <- struct{}{}:
		default: // a wake-up is already pending; it will read the latest state
		}
	}
}

// Publish announces that a job changed: to local watchers at once, and to other replicas
// through Redis. A Redis failure is logged and swallowed: Postgres holds the change, and remote
// watchers will see it at their next poll.
func (b *Bus) Publish(ctx context.Context, jobID uuid.UUID, version int64) {
	b.deliver(jobID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := b.rdb.Publish(ctx, b.channel, jobID.String()+":"+strconv.FormatInt(version, 10)).Err(); err != nil {
		b.log.Warn("publish job event", "job_id", jobID, "version", version, "err", err)
	}
}

// Run listens on the Redis channel and delivers notices from other replicas until ctx ends. The
// Redis client reconnects on its own; while it is away, watchers fall back to polling.
func (b *Bus) Run(ctx context.Context) error {
	ps := b.rdb.Subscribe(ctx, b.channel)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return nil
			}
			id, _, err := parse(msg.Payload)
			if err != nil {
				b.log.Warn("ignoring malformed job event", "payload", msg.Payload, "err", err)
				continue
			}
			b.deliver(id)
		}
	}
}

// Ready blocks until the Redis subscription is established, so tests can publish right after.
func (b *Bus) Ready(ctx context.Context) error {
	for {
		n, err := b.rdb.PubSubNumSub(ctx, b.channel).Result()
		if err == nil && n[b.channel] > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("events: subscription not ready: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func parse(payload string) (uuid.UUID, int64, error) {
	idPart, vPart, ok := strings.Cut(payload, ":")
	if !ok {
		return uuid.Nil, 0, fmt.Errorf("no version")
	}
	id, err := uuid.Parse(idPart)
	if err != nil {
		return uuid.Nil, 0, err
	}
	v, err := strconv.ParseInt(vPart, 10, 64)
	if err != nil {
		return uuid.Nil, 0, err
	}
	return id, v, nil
}

// Package events fans job-change notices out to watchers. A change is published on one Redis
// pub/sub channel so that every server replica hears it (the notices queued together share a
// message: "id:version id:version ..."), and delivered at once to watchers in this process. A
// writer that sends a Redis pipeline anyway adds its notices to it (PublishIn); others hand them
// to the bus's own queue (Publish).
// Notices are hints ("job X is at version N"), never data: watchers re-read the job from
// Postgres, and poll as well, so a lost notice delays a watcher but never misleads it.
// A writer in this process may also offer the committed state itself with its notice (Offer),
// so local watchers can send it without a read. The package knows job ids and versions; a
// snapshot is opaque to it.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

	// Notices waiting for Redis, in publishing order; one goroutine at a time sends them, while
	// there are any (publishing), and idle is closed when it stops.
	pubMu      sync.Mutex
	outbox     []string
	publishing bool
	idle       chan struct{}
	dropped    int // notices dropped from a full outbox since the last warning
	// Failed rounds since the last warning and when it was written (only the goroutine that
	// publishes touches them; pubMu orders one such goroutine after the other).
	failed int
	warned time.Time
}

// maxOutbox bounds the notices waiting for Redis; past it the oldest are dropped (Redis is
// away, and other replicas' watchers poll).
const maxOutbox = 10_000

// maxPerMessage caps the notices one PUBLISH carries. The notices waiting together go in as
// few messages as that allows, separated by spaces ("id:version id:version ..."), instead of a
// PUBLISH each: one command and one message for every replica per group of changes, not per
// job.
const maxPerMessage = 256

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
// holds up anyone else; Latest and Offered then say what the wake-up was about.
type Subscription struct {
	C     <-chan struct{}
	c     chan struct{}
	bus   *Bus
	jobID uuid.UUID

	mu          sync.Mutex
	announced   int64 // the highest version a notice named
	snapshot    any   // the newest state offered, at snapshotVer
	snapshotVer int64
	// offered are the states offered since the last Offered call, in version order (at most
	// maxOffered: a watcher that falls further behind loses the oldest, and coalesces).
	offered []Offer
}

// maxOffered bounds the offered states a Subscription keeps for its watcher.
const maxOffered = 64

// Offer is a committed state offered with a notice, at its version.
type Offer struct {
	Version int64
	State   any
}

// Latest returns the highest version any notice to s has named, and the newest committed
// state offered with one (nil if none was), with its version. A watcher that has already sent
// version announced has nothing to do; one whose snapshot is at announced can send it without
// reading the job.
func (s *Subscription) Latest() (announced int64, snapshot any, snapshotVersion int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.announced, s.snapshot, s.snapshotVer
}

// Offered returns the highest version any notice to s has named and the states offered since
// the last call with versions above after, oldest first, and forgets them. A watcher that sends
// them in turn misses none of the versions offered to it (unless it fell more than maxOffered
// behind); if announced is still above the last of them, a change came without a state (from
// another replica, or a write that offers none) and the job must be read.
func (s *Subscription) Offered(after int64) (announced int64, states []Offer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.offered {
		if o.Version > after {
			states = s.offered[i:]
			break
		}
	}
	s.offered = nil
	return s.announced, states
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

func (b *Bus) deliver(jobID uuid.UUID, version int64, snapshot any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[jobID] {
		s.mu.Lock()
		news := version > s.announced || (snapshot != nil && version > s.snapshotVer)
		s.announced = max(s.announced, version)
		if snapshot != nil && version > s.snapshotVer {
			s.snapshot, s.snapshotVer = snapshot, version
			if len(s.offered) == maxOffered {
				s.offered = slices.Delete(s.offered, 0, 1)
			}
			s.offered = append(s.offered, Offer{Version: version, State: snapshot})
		}
		s.mu.Unlock()
		if !news {
			continue // already announced (this process's own notice coming back from Redis)
		}
		select {
		case s.c <- struct{}{}:
		default: // a wake-up is already pending; Latest will tell it the newest
		}
	}
}

// Publish announces that a job changed: to local watchers at once, and to other replicas
// through Redis, without waiting for Redis: notices are queued and sent in order, pipelined, by
// one goroutine. A Redis failure is logged and swallowed: Postgres holds the change, and remote
// watchers will see it at their next poll.
func (b *Bus) Publish(_ context.Context, jobID uuid.UUID, version int64) {
	b.deliver(jobID, version, nil)
	b.send(notice(jobID, version))
}

// Notice names a job and the version it changed to.
type Notice struct {
	JobID   uuid.UUID
	Version int64
}

// PublishIn queues on pipe, after what its caller queued there before, the PUBLISH commands that
// announce the notices to other replicas, so that they ride on the caller's round trip instead
// of one of the Bus's own: a writer that has a pipeline to send anyway saves a round trip and a
// goroutine. Other replicas hear of the changes only after the caller's earlier commands have
// run. The caller sends pipe, then calls Deliver for this process's watchers; if the pipeline
// fails, it may Publish the notices instead (a notice heard twice is heard once).
func (b *Bus) PublishIn(ctx context.Context, pipe redis.Pipeliner, notices []Notice) {
	for part := range slices.Chunk(notices, maxPerMessage) {
		var sb strings.Builder
		for i, n := range part {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(notice(n.JobID, n.Version))
		}
		pipe.Publish(ctx, b.channel, sb.String())
	}
}

// Deliver announces the notices to this process's watchers only (see PublishIn).
func (b *Bus) Deliver(notices []Notice) {
	for _, n := range notices {
		b.deliver(n.JobID, n.Version, nil)
	}
}

// notice is a notice's form on the channel: "id:version".
func notice(jobID uuid.UUID, version int64) string {
	return jobID.String() + ":" + strconv.FormatInt(version, 10)
}

// Offer hands this process's watchers of a job its committed state at version, with a notice,
// so that they can send it without reading the job. snapshot must not change afterwards, and
// must be committed: a watcher may send it as it is. It does not go to Redis; Publish the
// version as well for other replicas.
func (b *Bus) Offer(jobID uuid.UUID, version int64, snapshot any) {
	b.deliver(jobID, version, snapshot)
}

// send queues a notice for Redis and starts the sender if it is not running.
func (b *Bus) send(msg string) {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if len(b.outbox) >= maxOutbox {
		b.outbox = b.outbox[1:]
		b.dropped++
	}
	b.outbox = append(b.outbox, msg)
	if !b.publishing {
		b.publishing = true
		b.idle = make(chan struct{})
		go b.drain(b.idle)
	}
}

// drain sends the queued notices to Redis, each round in one pipeline, until none is left.
func (b *Bus) drain(idle chan struct{}) {
	defer close(idle)
	for {
		b.pubMu.Lock()
		msgs, dropped := b.outbox, b.dropped
		b.outbox, b.dropped = nil, 0
		if len(msgs) == 0 {
			b.publishing = false
			b.pubMu.Unlock()
			return
		}
		b.pubMu.Unlock()
		if dropped > 0 {
			b.log.Warn("job event queue was full: dropped the oldest notices (is Redis reachable?)", "dropped", dropped)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for m := range slices.Chunk(msgs, maxPerMessage) {
				p.Publish(ctx, b.channel, strings.Join(m, " "))
			}
			return nil
		})
		cancel()
		// While Redis refuses, the warning is written at most every 10 s. (Rounds need no
		// backoff of our own: go-redis's pool backs off its dials, and notices pile up
		// meanwhile and go in one pipeline.)
		if err != nil && time.Since(b.warned) >= 10*time.Second {
			b.log.Warn("publish job events", "notices", len(msgs), "failed_rounds", b.failed+1, "err", err)
			b.warned, b.failed = time.Now(), 0
		} else if err != nil {
			b.failed++
		}
	}
}

// Flush waits until every notice published so far has been sent to Redis (or failed), or ctx
// ends.
func (b *Bus) Flush(ctx context.Context) error {
	b.pubMu.Lock()
	idle, busy := b.idle, b.publishing
	b.pubMu.Unlock()
	if !busy {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("events: flush: %w", ctx.Err())
	}
}

// Run listens on the Redis channel and delivers notices from other replicas until ctx ends. The
// Redis client reconnects on its own; while it is away, watchers fall back to polling.
//
// When ctx ends it also waits (at most 2 s) for the notices still queued for Redis, so a
// server shutting down tells the other replicas about its last changes.
func (b *Bus) Run(ctx context.Context) error {
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = b.Flush(fctx)
	}()
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
			for notice := range strings.FieldsSeq(msg.Payload) {
				id, version, err := parse(notice)
				if err != nil {
					b.log.Warn("ignoring malformed job event", "payload", notice, "err", err)
					continue
				}
				b.deliver(id, version, nil)
			}
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

package registry

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultInterval is how often a worker writes its record unless configured otherwise.
const DefaultInterval = 5 * time.Second

// TTLFactor is how many heartbeat intervals a record outlives its last write by default: a
// worker that misses one or two heartbeats (a slow Redis, a pause) stays listed.
const TTLFactor = 3

// Config describes one worker process to register.
type Config struct {
	// ID is the worker's id, the one it claims batches with. Required.
	ID string
	// Host defaults to os.Hostname().
	Host string
	// PID defaults to os.Getpid().
	PID int
	// Version is the binary's version. Defaults to "unknown".
	Version string
	// TotalSlots is how many batches the worker works on at once.
	TotalSlots int
	// Interval between heartbeats. Defaults to DefaultInterval.
	Interval time.Duration
	// TTL is how long the record outlives the last heartbeat. Defaults to TTLFactor x Interval.
	TTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Worker is the registration of one worker process: it counts what the worker does and writes
// the record at every heartbeat, and at once when a batch starts or ends. Its methods are safe
// for concurrent use.
type Worker struct {
	reg     *Registry
	cfg     Config
	start   time.Time
	changed chan struct{}

	mu        sync.Mutex
	active    map[uuid.UUID]uuid.UUID // batch id -> job id
	processed int64
	failed    int64
}

// NewWorker prepares the registration of a worker; nothing is written until Run.
func (r *Registry) NewWorker(cfg Config) (*Worker, error) {
	if cfg.ID == "" {
		return nil, ErrNoID
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	cfg.PID = cmp.Or(cfg.PID, os.Getpid())
	cfg.Version = cmp.Or(cfg.Version, "unknown")
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.TTL = cmp.Or(cfg.TTL, TTLFactor*cfg.Interval)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Interval <= 0 || cfg.TTL < cfg.Interval {
		return nil, fmt.Errorf("registry: want 0 < interval <= ttl, got interval %s, ttl %s", cfg.Interval, cfg.TTL)
	}
	return &Worker{
		reg:     r,
		cfg:     cfg,
		start:   time.Now(),
		changed: make(chan struct{}, 1),
		active:  map[uuid.UUID]uuid.UUID{},
	}, nil
}

// BatchStarted records that the worker claimed a batch of a job and works on it.
func (w *Worker) BatchStarted(jobID, batchID uuid.UUID) {
	w.mu.Lock()
	w.active[batchID] = jobID
	w.mu.Unlock()
	w.poke()
}

// BatchEnded records that the worker stopped working on a batch (finished, handed back, stopped).
func (w *Worker) BatchEnded(batchID uuid.UUID) {
	w.mu.Lock()
	delete(w.active, batchID)
	w.mu.Unlock()
	w.poke()
}

// DocumentDone counts one finished document; the count goes out with the next write.
func (w *Worker) DocumentDone(failed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.processed++
	if failed {
		w.failed++
	}
}

// poke asks Run for a write now. Changes arriving while one is pending join it.
func (w *Worker) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// Info is the record as it would be written now.
func (w *Worker) Info() Info {
	w.mu.Lock()
	defer w.mu.Unlock()
	jobs := make([]string, 0, len(w.active))
	for _, j := range w.active {
		if s := j.String(); !slices.Contains(jobs, s) {
			jobs = append(jobs, s)
		}
	}
	slices.Sort(jobs)
	return Info{
		ID:                 w.cfg.ID,
		Host:               w.cfg.Host,
		PID:                w.cfg.PID,
		Version:            w.cfg.Version,
		StartTime:          w.start,
		LastHeartbeat:      time.Now(),
		ActiveJobs:         jobs,
		DocumentsProcessed: w.processed,
		DocumentsFailed:    w.failed,
		BusySlots:          len(w.active),
		TotalSlots:         w.cfg.TotalSlots,
	}
}

// Run writes the record at once, then at every interval and on every batch change, until ctx
// ends; then it deletes the record. A failed write is logged and tried again at the next
// heartbeat: the registry is for observing, and a worker keeps working while Redis is away.
func (w *Worker) Run(ctx context.Context) {
	log := w.cfg.Logger.With("worker_id", w.cfg.ID)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		wctx, cancel := context.WithTimeout(ctx, w.cfg.Interval)
		err := w.reg.put(wctx, w.Info(), w.cfg.TTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			log.WarnContext(ctx, "worker heartbeat failed; trying again each interval", "err", err)
			failing = true
		case err == nil && failing:
			log.InfoContext(ctx, "worker heartbeat restored")
			failing = false
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := w.reg.remove(dctx, w.cfg.ID); err != nil {
				log.WarnContext(dctx, "could not remove the worker record; it expires by itself", "ttl", w.cfg.TTL, "err", err)
			}
			return
		case <-t.C:
		case <-w.changed:
		}
	}
}

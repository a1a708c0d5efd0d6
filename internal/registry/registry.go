// Package registry keeps the roll of live worker processes in Redis. Each worker process writes a
// record of itself (id, host, version, start time, what it works on, what it has done) under a key
// that expires a few heartbeat intervals after its last write: a worker that stops cleanly deletes
// its record, one that dies drops out when the key expires. The server lists the records for
// SystemService.ListWorkers and GetStats.
//
// It knows Redis and nothing of jobs beyond their ids; the worker tells it what it does through
// BatchStarted, BatchEnded and DocumentDone.
package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Info is one worker's record.
type Info struct {
	ID                 string    `json:"id"`
	Host               string    `json:"host"`
	PID                int       `json:"pid"`
	Version            string    `json:"version"`
	StartTime          time.Time `json:"start_time"`
	LastHeartbeat      time.Time `json:"last_heartbeat"`
	ActiveJobs         []string  `json:"active_jobs"`
	DocumentsProcessed int64     `json:"documents_processed"`
	DocumentsFailed    int64     `json:"documents_failed"`
	BusySlots          int       `json:"busy_slots"`
	TotalSlots         int       `json:"total_slots"`
}

// Registry reads and writes the records under one deployment's Redis prefix.
type Registry struct {
	rdb    *redis.Client
	prefix string
}

// New returns the registry under prefix (the deployment's PIPELINE_REDIS_PREFIX).
func New(rdb *redis.Client, prefix string) *Registry {
	return &Registry{rdb: rdb, prefix: prefix}
}

// The record of worker id lives at <prefix>workers:<id>; the set <prefix>workers names every
// worker that may have one, so listing never scans the keyspace. The set is only an index: a
// member whose record expired is dropped by the next List.
func (r *Registry) recordKey(id string) string { return r.prefix + "workers:" + id }
func (r *Registry) indexKey() string           { return r.prefix + "workers" }

// put writes a record that expires after ttl, and indexes it.
func (r *Registry) put(ctx context.Context, info Info, ttl time.Duration) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.recordKey(info.ID), b, ttl)
		p.SAdd(ctx, r.indexKey(), info.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: write worker record: %w", err)
	}
	return nil
}

// remove deletes a worker's record and its index entry.
func (r *Registry) remove(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.recordKey(id))
		p.SRem(ctx, r.indexKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: remove worker record: %w", err)
	}
	return nil
}

// List returns the live workers, ordered by host, start time and id. Index entries whose record
// has expired (the worker died) are removed on the way.
func (r *Registry) List(ctx context.Context) ([]Info, error) {
	ids, err := r.rdb.SMembers(ctx, r.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: list workers: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.recordKey(id)
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: read workers: %w", err)
	}
	out := make([]Info, 0, len(ids))
	var gone []any
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			// Expired. A worker that is alive re-adds itself at its next heartbeat, so removing
			// an entry that raced with a fresh registration costs at most one interval.
			gone = append(gone, ids[i])
			continue
		}
		var info Info
		if err := json.Unmarshal([]byte(s), &info); err != nil {
			// A record this version cannot read (a newer worker's, during a rolling upgrade)
			// leaves the list rather than breaking it; it is kept, and expires with its worker.
			continue
		}
		out = append(out, info)
	}
	if len(gone) > 0 {
		if err := r.rdb.SRem(ctx, r.indexKey(), gone...).Err(); err != nil {
			return nil, fmt.Errorf("registry: prune expired workers: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), a.StartTime.Compare(b.StartTime), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ErrNoID is returned by NewWorker for a Config without an ID.
var ErrNoID = errors.New("registry: a worker needs an id")

// Package embedded is the default vector store: every record in memory, searched by a
// brute-force cosine scan, made durable by a write-ahead log and snapshots in one directory.
// One process at a time may open a directory, which is why `pipeline dev` runs its workers
// in-process and separate workers need Milvus. The package knows the vector.Store seam and the
// filesystem, nothing about jobs, queues or embedders.
//
// Files in the directory:
//
//	LOCK         held (flock) while a store is open; holds the owner's pid, for the error message
//	meta.json    format version and vector dimension, written once when the store is created
//	snapshot     every record as of generation G; absent until the first compaction
//	wal-G        every write since that snapshot, one checksummed frame per write call, then
//	             zeros: the log is extended ahead of its writes (logGrowth at a time), so that
//	             a sync of a write need not also make a new file size durable
//
// snapshot.tmp, meta.json.tmp and wal-H (H != G) are what an interrupted compaction or creation
// left behind, and Open removes them. Other files in the directory are left alone.
package embedded

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pipeline-dev/pipeline/internal/errs"
	"github.com/pipeline-dev/pipeline/internal/vector"
)

// DefaultCompactionThreshold is the least log size at which a compaction is considered.
const DefaultCompactionThreshold = 8 << 20

// maxGroupWait bounds how long a write of a vector.WriteGroup waits for the rest of its group
// before its sync: the members are on their way (encoding their frames), so this only matters
// when one never comes.
const maxGroupWait = 5 * time.Millisecond

// compactionRatio: the log is compacted once it is this many times larger than the live data.
const compactionRatio = 2

const (
	metaFile     = "meta.json"
	snapshotFile = "snapshot"
	walPrefix    = "wal-"
	tmpSuffix    = ".tmp"
	formatName   = "pipeline embedded vector store"
	formatV1     = 1
)

// Option configures Open.
type Option func(*options)

type options struct {
	compactionThreshold int64
	logger              *slog.Logger
}

// WithCompactionThreshold sets the least log size, in bytes, at which the log is folded into a
// new snapshot (once it is also twice the size of the live data). Defaults to
// DefaultCompactionThreshold.
func WithCompactionThreshold(bytes int64) Option {
	return func(o *options) { o.compactionThreshold = bytes }
}

// WithLogger sets where warnings go (a torn log tail dropped, a failed compaction). Defaults to
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// InUseError is returned by Open when another store holds the directory: in another process, or
// opened twice in this one.
type InUseError struct {
	Dir string
	PID int // the holder's pid as it wrote it, 0 if unknown
	// MayBeStale is set where locks do not die with their process (no flock): a crash leaves
	// the lock behind.
	MayBeStale bool
}

func (e *InUseError) Error() string {
	msg := fmt.Sprintf("embedded vector store at %s is in use by another process; "+
		"run workers in-process with `pipeline dev`, or use Milvus", e.Dir)
	if e.PID > 0 {
		msg += fmt.Sprintf(" (lock held by pid %d)", e.PID)
	}
	if e.MayBeStale {
		msg += fmt.Sprintf("; if no such process is running, remove %s", lockPath(e.Dir))
	}
	return msg
}

// Unwrap makes the error an errs.ErrFailedPrecondition: the request is fine, the state is not.
func (e *InUseError) Unwrap() error { return errs.ErrFailedPrecondition }

// Store is the embedded vector.Store. Searches and counts run in parallel with each other and
// with a write's disk sync; writes are appended to the log one at a time and share syncs (group
// commit): writers that arrive while a sync is in flight are made durable together by the next.
type Store struct {
	dir  string
	dim  int
	opts options
	lock *os.File
	log  *slog.Logger
	// syncFile makes the log durable up to end (its written bytes; zeros follow); a test hook
	// may watch it. Defaults to syncData, which ignores end.
	syncFile func(f *os.File, end int64) error
	// groupWait bounds a grouped write's wait for the rest of its group. Defaults to maxGroupWait.
	groupWait time.Duration

	// syncMu is held by the one writer that syncs the log for every frame appended so far (and
	// then applies them), and by compaction and Close. Lock order: syncMu, writeMu, mu.
	syncMu sync.Mutex
	// committed counts the frames synced and applied, in log order. Guarded by syncMu and
	// writeMu both (either suffices to read it).
	committed uint64

	// writeMu serialises appends, so the log's order is the order writes are applied in. It is
	// not held across a sync, so writers append while one syncs. A writer holding it may read
	// mem without mu: mem changes only under writeMu and mu.
	writeMu   sync.Mutex
	wal       *os.File
	walSize   int64 // bytes of whole frames: where the next frame goes
	walAlloc  int64 // the file's size: zeros from walSize on
	gen       uint64
	compactAt int64 // after a failed compaction, no new try below this log size
	// appended counts the frames written to the log; pending holds those not yet committed,
	// in log order (appended - committed of them).
	appended uint64
	pending  []pendingWrite
	// failed is set when the log's state on disk is no longer known (an fsync failed, a failed
	// write could not be undone). Every later write returns it; reads go on.
	failed error

	mu     sync.RWMutex // guards mem and closed
	mem    *memory
	closed bool
}

// pendingWrite is a frame in the log that is not yet synced, and so not yet visible.
type pendingWrite struct {
	apply func()
	// docs and sources an upsert writes to: a delete of one of them must be logged even when
	// mem holds nothing of it yet.
	docs, sources []string
}

var _ vector.Store = (*Store)(nil)

// Open opens the store in dir, creating dir and the store if need be, and loads it into memory:
// the snapshot, then the log. A torn end of the log (a crash mid-write) is cut off with a
// warning. It fails with an *InUseError if another store has dir open, and with an
// errs.ErrFailedPrecondition error if the store there holds vectors of another dimension.
func Open(dir string, dim int, opts ...Option) (*Store, error) {
	if dim <= 0 {
		return nil, errs.InvalidArgument("dimension", "must be positive, got %d", dim)
	}
	if dir == "" {
		return nil, errs.InvalidArgument("dir", "the embedded vector store needs a directory")
	}
	o := options{compactionThreshold: DefaultCompactionThreshold, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded vector store: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		var inUse *InUseError
		if errors.As(err, &inUse) {
			return nil, err
		}
		return nil, fmt.Errorf("embedded vector store at %s: locking: %w", dir, err)
	}
	s := &Store{
		dir:  dir,
		dim:  dim,
		opts: o,
		lock: lock,
		log:  o.logger.With("dir", dir),
		mem:  newMemory(dim),

		syncFile:  func(f *os.File, _ int64) error { return syncData(f) },
		groupWait: maxGroupWait,
	}
	if err := s.load(); err != nil {
		if s.wal != nil {
			_ = s.wal.Close()
		}
		_ = unlockDir(lock)
		return nil, err
	}
	return s, nil
}

// Dimension is the length every vector must have.
func (s *Store) Dimension() int { return s.dim }

// Upsert writes records, replacing those with the same ID, as one log entry synced to disk
// before it returns. Vectors are stored scaled to unit length, so searches are dot products.
// Upserts made at once under one vector.WriteGroup share a sync (see write).
func (s *Store) Upsert(ctx context.Context, records []vector.Record) error {
	frame, p, err := s.prepareUpsert(records)
	if err != nil || frame == nil {
		vector.WriteGroupOf(ctx).Arrive()
		return cmp.Or(err, ctx.Err())
	}
	return s.write(ctx, func() ([]byte, pendingWrite, error) { return frame, p, nil })
}

// prepareUpsert checks and encodes an upsert's records, outside any lock: its log frame (nil for
// no records) and how to apply it.
func (s *Store) prepareUpsert(records []vector.Record) ([]byte, pendingWrite, error) {
	if len(records) == 0 {
		return nil, pendingWrite{}, nil
	}
	prepared := make([]vector.Record, len(records))
	for i, r := range records {
		if r.ID == "" {
			return nil, pendingWrite{}, errs.InvalidArgument("id", "record %d has no id", i)
		}
		if len(r.Vector) != s.dim {
			return nil, pendingWrite{}, errs.InvalidArgument("vector", "record %q has %d dimensions, the store holds %d", r.ID, len(r.Vector), s.dim)
		}
		if r.ChunkIndex < 0 {
			return nil, pendingWrite{}, errs.InvalidArgument("chunk_index", "record %q has chunk index %d", r.ID, r.ChunkIndex)
		}
		unit, ok := normalise(r.Vector)
		if !ok {
			return nil, pendingWrite{}, errs.InvalidArgument("vector", "record %q has a zero, NaN or infinite vector", r.ID)
		}
		r.Vector = unit
		prepared[i] = r
	}
	frame, err := encodeUpsert(prepared, s.dim)
	if err != nil {
		return nil, pendingWrite{}, errs.InvalidArgument("records", "%v", err)
	}
	p := pendingWrite{apply: func() {
		for _, r := range prepared {
			s.mem.upsert(r)
		}
	}}
	for _, r := range prepared {
		if !slices.Contains(p.docs, r.DocumentID) {
			p.docs = append(p.docs, r.DocumentID)
		}
		if !slices.Contains(p.sources, r.SourceID) {
			p.sources = append(p.sources, r.SourceID)
		}
	}
	return frame, p, nil
}

// DeleteDocument removes the document's chunks with index >= fromIndex (0: all of them). A
// delete that matches nothing writes nothing.
func (s *Store) DeleteDocument(ctx context.Context, documentID string, fromIndex int) error {
	if fromIndex < 0 {
		return errs.InvalidArgument("from_index", "must not be negative, got %d", fromIndex)
	}
	return s.write(ctx, func() ([]byte, pendingWrite, error) {
		if len(s.mem.documentSlots(documentID, fromIndex)) == 0 && !s.pendingTouches(documentID, "") {
			return nil, pendingWrite{}, nil
		}
		frame, err := encodeDeleteDoc(documentID, fromIndex)
		// Which chunks go is decided when the frame is applied, after the writes before it,
		// as a replay of the log decides it.
		return frame, pendingWrite{apply: func() { s.mem.removeSlots(s.mem.documentSlots(documentID, fromIndex)) }}, err
	})
}

// DeleteSource removes every chunk of the source.
func (s *Store) DeleteSource(ctx context.Context, sourceID string) error {
	return s.write(ctx, func() ([]byte, pendingWrite, error) {
		if len(s.mem.sourceSlots(sourceID)) == 0 && !s.pendingTouches("", sourceID) {
			return nil, pendingWrite{}, nil
		}
		frame, err := encodeDeleteSource(sourceID)
		return frame, pendingWrite{apply: func() { s.mem.removeSlots(s.mem.sourceSlots(sourceID)) }}, err
	})
}

// pendingTouches reports whether a write not yet applied upserts into the document or source.
// Called with writeMu held.
func (s *Store) pendingTouches(documentID, sourceID string) bool {
	for _, p := range s.pending {
		if (documentID != "" && slices.Contains(p.docs, documentID)) || (sourceID != "" && slices.Contains(p.sources, sourceID)) {
			return true
		}
	}
	return false
}

// Search scans every record the filter allows and returns the topK nearest to vec by cosine,
// best first; equal scores come in id order. Hits carry a copy of the stored (unit) vector.
func (s *Store) Search(ctx context.Context, vec []float32, topK int, filter vector.Filter) ([]vector.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(vec) != s.dim {
		return nil, errs.InvalidArgument("vector", "query has %d dimensions, the store holds %d", len(vec), s.dim)
	}
	if topK <= 0 {
		return nil, errs.InvalidArgument("top_k", "must be positive, got %d", topK)
	}
	unit, ok := normalise(vec)
	if !ok {
		return nil, errs.InvalidArgument("vector", "query vector is zero, NaN or infinite")
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.errClosed()
	}
	found, err := s.mem.search(ctx, unit, topK, filter)
	if err != nil {
		return nil, err
	}
	hits := make([]vector.Hit, len(found))
	for i, f := range found {
		hits[i].Record = s.mem.recs[f.slot]
		hits[i].Vector = slices.Clone(s.mem.vec(f.slot))
		// Rounding can carry a unit-vector dot product a hair past ±1.
		hits[i].Score = max(-1, min(1, f.score))
	}
	return hits, nil
}

// Count returns how many records match filter.
func (s *Store) Count(ctx context.Context, filter vector.Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, s.errClosed()
	}
	return s.mem.count(filter), nil
}

// Close releases the directory. Every write was synced when it returned, so there is nothing
// left to flush but the log file itself. Closing twice is harmless.
func (s *Store) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	// Writers that appended and wait for a sync find their frames committed here.
	s.commit()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mem = nil
	s.mu.Unlock()

	var err error
	if s.failed == nil {
		// The zeros ahead of the writes go: a closed log ends at its last frame.
		if s.walAlloc > s.walSize {
			err = s.wal.Truncate(s.walSize)
		}
		err = errors.Join(err, s.syncFile(s.wal, s.walSize))
	}
	err = errors.Join(err, s.wal.Close(), unlockDir(s.lock))
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: closing: %w", s.dir, err)
	}
	return nil
}

func (s *Store) errClosed() error {
	return errs.FailedPrecondition("embedded vector store at %s is closed", s.dir)
}

// write runs one write call: prepare (under writeMu, so it sees the state the write applies to,
// with the writes still pending) returns the log frame and how to apply it, or a nil frame for
// nothing to do. The frame is appended, then synced before the change becomes visible, so a
// write is on disk before any reader can see it and before the call returns.
//
// Group commit: the append holds writeMu only; the sync is done under syncMu by whichever
// waiting writer gets it first, for every frame appended by then, which it then applies in log
// order. A writer whose frame an earlier sync covered returns without a sync of its own. A
// write of a vector.WriteGroup (ctx) first waits, at most groupWait, for the rest of its
// group to append, so that the first sync covers them all: writes made at once otherwise
// arrive a frame's encoding apart, and the first would sync alone.
func (s *Store) write(ctx context.Context, prepare func() (frame []byte, p pendingWrite, err error)) error {
	group := vector.WriteGroupOf(ctx)
	if err := ctx.Err(); err != nil {
		group.Arrive()
		return err
	}
	seq, err := s.append(ctx, prepare)
	group.Arrive()
	if err != nil || seq == 0 {
		return err
	}
	group.Wait(s.groupWait)
	// From here the frame is in the log and will be applied: the caller waits for it whatever
	// its ctx says, so that an error means it was not written.
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.committed < seq {
		s.commit()
	}
	if s.committed >= seq {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return cmp.Or(s.failed, s.errClosed())
}

// append writes the frame prepare makes to the log and returns its sequence number; 0 when there
// was nothing to write.
func (s *Store) append(ctx context.Context, prepare func() ([]byte, pendingWrite, error)) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return 0, s.errClosed()
	}
	if s.failed != nil {
		return 0, s.failed
	}
	// The wait for writeMu may have outlived the caller.
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	frame, p, err := prepare()
	if err != nil || frame == nil {
		return 0, err
	}
	if err := s.appendLog(frame); err != nil {
		return 0, err
	}
	s.pending = append(s.pending, p)
	s.appended++
	return s.appended, nil
}

// commit syncs the log and applies every frame appended so far. Called with syncMu held; it
// takes writeMu only around its bookkeeping, so writers go on appending during the sync. A
// failed sync leaves the store failed and the frames unapplied.
func (s *Store) commit() {
	s.writeMu.Lock()
	n, end := len(s.pending), s.walSize
	failed := s.failed != nil || s.closed
	s.writeMu.Unlock()
	if n == 0 || failed {
		return
	}
	// Every frame counted in n was written whole before writeMu was released: the sync covers it.
	err := s.syncFile(s.wal, end)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages and reports success
		// next time: nothing written since the last good sync can be trusted.
		s.failed = fmt.Errorf("embedded vector store at %s can no longer write: syncing its log failed (%v); reopen it", s.dir, err)
		return
	}
	s.applyPending(n)
	s.maybeCompact()
}

// applyPending makes the first n pending frames visible, in log order. Called with writeMu held,
// after a sync that covered them.
func (s *Store) applyPending(n int) {
	s.mu.Lock()
	for _, p := range s.pending[:n] {
		p.apply()
	}
	s.mu.Unlock()
	clear(s.pending[:n])
	s.pending = s.pending[n:]
	s.committed += uint64(n)
}

// appendLog writes a frame at the end of the log, unsynced, first extending the log with zeros
// when the frame would not fit in it. Called with writeMu held.
func (s *Store) appendLog(frame []byte) error {
	end := s.walSize + int64(len(frame))
	if end > s.walAlloc {
		// Without room for the zeros (a nearly full disk), the frame may still fit: it is
		// written at the end as before, and its sync then carries the new size.
		_ = s.growLog(end + logGrowth)
	}
	if _, err := s.wal.WriteAt(frame, s.walSize); err != nil {
		// A partial frame left in the middle of the log would read as a torn tail on the next
		// Open and cut off every write after it: take it back, or stop writing.
		if terr := s.wal.Truncate(s.walSize); terr != nil {
			s.failed = fmt.Errorf("embedded vector store at %s can no longer write: a failed log write (%v) could not be undone (%v); reopen it", s.dir, err, terr)
			return s.failed
		}
		s.walAlloc = s.walSize
		return errs.Transient(fmt.Errorf("embedded vector store at %s: writing its log: %w", s.dir, err), 0)
	}
	s.walSize, s.walAlloc = end, max(s.walAlloc, end)
	return nil
}

// logGrowth is how far ahead of its writes the log is extended with zeros. A write within the
// file's size leaves its size (metadata) alone, so the write's sync (fdatasync) flushes the data
// alone and no filesystem journal commit: ~0.35 against ~0.55 ms per sync on this machine's
// ext4. The zeros are written, not just reserved: a reserved (fallocated) range is marked
// unwritten, and a first write into it changes metadata again.
const logGrowth = 4 << 20

// zeros is what growLog writes.
var zeros [64 << 10]byte

// growLog writes zeros from the file's end up to size. A failure leaves zeros beyond the last
// frame, which a reopen reads as the end of the log, and walAlloc where the zeros end. Called
// with writeMu held.
func (s *Store) growLog(size int64) error {
	for s.walAlloc < size {
		n := min(int64(len(zeros)), size-s.walAlloc)
		if _, err := s.wal.WriteAt(zeros[:n], s.walAlloc); err != nil {
			return err
		}
		s.walAlloc += n
	}
	return nil
}

// maybeCompact compacts the log when it has grown enough. Called with syncMu and writeMu held.
func (s *Store) maybeCompact() {
	if s.walSize < s.opts.compactionThreshold || s.walSize < s.compactAt || s.walSize <= compactionRatio*s.mem.live {
		return
	}
	// A snapshot is of mem, so frames appended during the last sync go in first: no writer can
	// append more while writeMu is held.
	if n := len(s.pending); n > 0 {
		if err := s.syncFile(s.wal, s.walSize); err != nil {
			s.failed = fmt.Errorf("embedded vector store at %s can no longer write: syncing its log failed (%v); reopen it", s.dir, err)
			return
		}
		s.applyPending(n)
	}
	if err := s.compact(); err != nil {
		s.compactAt = 2 * s.walSize
		s.log.Warn("embedded vector store: compaction failed; the log keeps growing and compaction is retried later", "err", err, "log_bytes", s.walSize)
	}
}

// compact writes every live record to a new snapshot of the next generation, with an empty log
// of that generation beside it, and switches to them. The rename of the snapshot is the commit
// point: before it, Open finds the old snapshot and log; after it, the new ones. Called with
// syncMu and writeMu held and nothing pending (mem does not change; readers go on).
func (s *Store) compact() error {
	next := s.gen + 1
	newWALPath := s.path(walName(next))
	tmpPath := s.path(snapshotFile + tmpSuffix)
	abandon := func(f *os.File, err error) error {
		if f != nil {
			_ = f.Close()
		}
		_ = os.Remove(tmpPath)
		_ = os.Remove(newWALPath)
		return err
	}

	wal, err := os.OpenFile(newWALPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return abandon(nil, err)
	}
	if err := wal.Sync(); err != nil {
		return abandon(wal, err)
	}
	if err := s.writeSnapshot(tmpPath, next); err != nil {
		return abandon(wal, err)
	}
	if err := os.Rename(tmpPath, s.path(snapshotFile)); err != nil {
		return abandon(wal, err)
	}
	if err := syncDir(s.dir); err != nil {
		// Which snapshot a crash would leave is unknown, so neither log is safe to write to.
		_ = wal.Close()
		s.failed = fmt.Errorf("embedded vector store at %s can no longer write: syncing the directory after a compaction failed (%v); reopen it", s.dir, err)
		return s.failed
	}

	oldPath := s.path(walName(s.gen))
	if err := s.wal.Close(); err != nil {
		s.log.Warn("embedded vector store: closing the old log", "err", err)
	}
	s.wal, s.walSize, s.walAlloc, s.gen, s.compactAt = wal, 0, 0, next, 0
	if err := os.Remove(oldPath); err != nil {
		s.log.Warn("embedded vector store: removing the old log; Open will retry", "err", err)
	}
	return nil
}

// snapshotBatch bounds how many records go in one snapshot frame.
const snapshotBatch = 1024

func (s *Store) writeSnapshot(path string, gen uint64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // after the explicit Close below, a harmless no-op
	w := bufio.NewWriterSize(f, 1<<20)

	n := s.mem.len()
	frame, err := encodeSnapshotHeader(snapshotHeader{version: formatV1, dim: s.dim, generation: gen, count: n})
	if err != nil {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		return err
	}
	batch := make([]vector.Record, 0, snapshotBatch)
	for slot := 0; slot < n; slot += snapshotBatch {
		batch = batch[:0]
		for i := slot; i < min(slot+snapshotBatch, n); i++ {
			r := s.mem.recs[i]
			r.Vector = s.mem.vec(i)
			batch = append(batch, r)
		}
		frame, err := encodeUpsert(batch, s.dim)
		if err != nil {
			return err
		}
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// load reads meta.json, the snapshot and the log into memory. Open holds the lock.
func (s *Store) load() error {
	if err := s.loadMeta(); err != nil {
		return err
	}
	if err := s.loadSnapshot(); err != nil {
		return err
	}
	s.removeLeftovers()
	if err := s.loadLog(); err != nil {
		return err
	}
	s.syncMu.Lock() // not needed yet, but compact expects them
	s.writeMu.Lock()
	s.maybeCompact()
	s.writeMu.Unlock()
	s.syncMu.Unlock()
	return nil
}

type meta struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	Dimension int    `json:"dimension"`
}

func (s *Store) loadMeta() error {
	b, err := os.ReadFile(s.path(metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		if data, _ := s.hasData(); data {
			return fmt.Errorf("embedded vector store at %s has data files but no %s, so its dimension is unknown; restore the file or use a new directory", s.dir, metaFile)
		}
		b, _ := json.MarshalIndent(meta{Format: formatName, Version: formatV1, Dimension: s.dim}, "", "  ")
		if err := writeFileAtomic(s.dir, metaFile, append(b, '\n')); err != nil {
			return fmt.Errorf("embedded vector store at %s: creating %s: %w", s.dir, metaFile, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil || m.Format != formatName {
		return fmt.Errorf("%s is not an embedded vector store (its %s is not one)", s.dir, metaFile)
	}
	if m.Version != formatV1 {
		return fmt.Errorf("embedded vector store at %s has format version %d; this build reads version %d", s.dir, m.Version, formatV1)
	}
	if m.Dimension != s.dim {
		return errs.FailedPrecondition("embedded vector store at %s holds %d-dimensional vectors, but the embedder makes %d: "+
			"point the store at a new directory (or delete this one) and process the sources again", s.dir, m.Dimension, s.dim)
	}
	return nil
}

// hasData reports whether dir holds a snapshot or a non-empty log.
func (s *Store) hasData() (bool, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Name() == snapshotFile {
			return true, nil
		}
		if _, ok := parseWALName(e.Name()); ok {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

func (s *Store) damaged(what string, err error) error {
	return fmt.Errorf("embedded vector store at %s: %s is damaged (%v); it is written whole before it is used, "+
		"so this is not a crash: restore the directory from a backup, or delete it and process the sources again", s.dir, what, err)
}

func (s *Store) loadSnapshot() error {
	f, err := os.Open(s.path(snapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
	}
	fr := &frameReader{r: bufio.NewReaderSize(f, 1<<20), size: info.Size()}

	payload, err := fr.next()
	if err != nil {
		return s.damaged(snapshotFile, err)
	}
	o, err := decodeOp(payload, s.dim)
	if err != nil || o.kind != opSnapshot {
		return s.damaged(snapshotFile, fmt.Errorf("no header: %v", err))
	}
	h := o.snap
	if h.version != formatV1 {
		return fmt.Errorf("embedded vector store at %s: snapshot has format version %d; this build reads version %d", s.dir, h.version, formatV1)
	}
	if h.dim != s.dim {
		return s.damaged(snapshotFile, fmt.Errorf("it holds %d dimensions, %s says %d", h.dim, metaFile, s.dim))
	}
	for loaded := 0; loaded < h.count; {
		payload, err := fr.next()
		if err == io.EOF {
			err = fmt.Errorf("%d of %d records", loaded, h.count)
		}
		if err != nil {
			return s.damaged(snapshotFile, err)
		}
		o, err := decodeOp(payload, s.dim)
		if err == nil && o.kind != opUpsert {
			err = fmt.Errorf("operation %d in a snapshot", o.kind)
		}
		if err != nil {
			return s.damaged(snapshotFile, err)
		}
		for _, r := range o.records {
			s.mem.upsert(r)
		}
		loaded += len(o.records)
	}
	if _, err := fr.next(); err != io.EOF {
		return s.damaged(snapshotFile, fmt.Errorf("data after the last record (%v)", err))
	}
	if s.mem.len() != h.count {
		return s.damaged(snapshotFile, fmt.Errorf("%d distinct records, header says %d", s.mem.len(), h.count))
	}
	s.gen = h.generation
	return nil
}

// removeLeftovers deletes what an interrupted compaction or creation left: a temporary file, or a
// log of another generation (the new one if the crash came before the snapshot's rename, the old
// one if after).
func (s *Store) removeLeftovers() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		gen, isWAL := parseWALName(name)
		// Only names this package writes: the directory may be shared with other files.
		if name == snapshotFile+tmpSuffix || name == metaFile+tmpSuffix || (isWAL && gen != s.gen) {
			if err := os.Remove(s.path(name)); err != nil {
				s.log.Warn("embedded vector store: removing a leftover file", "file", name, "err", err)
			} else {
				s.log.Info("embedded vector store: removed a leftover of an interrupted compaction", "file", name)
			}
		}
	}
}

// loadLog replays the log of the current generation, cutting off a torn end.
func (s *Store) loadLog() error {
	name := walName(s.gen)
	path := s.path(name)
	_, statErr := os.Stat(path)
	missing := errors.Is(statErr, fs.ErrNotExist)
	if missing && s.gen > 0 {
		// A compaction creates and syncs the log before the snapshot that names it.
		s.log.Warn("embedded vector store: the log of the current snapshot is missing; starting an empty one", "file", name)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
	}
	s.wal = f
	if missing {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
		}
	}
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
	}
	fr := &frameReader{r: bufio.NewReaderSize(f, 1<<20), size: info.Size()}
	for {
		payload, err := fr.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errBadFrame) {
			zero, zerr := zeroFrom(f, fr.offset, info.Size())
			if zerr != nil {
				return fmt.Errorf("embedded vector store at %s: reading %s: %w", s.dir, name, zerr)
			}
			if zero {
				// The zeros the log was extended with: its end, not a tear (a write whose bytes
				// never reached the disk reads the same, and never returned either).
				s.walSize, s.walAlloc = fr.offset, info.Size()
				return nil
			}
			// A crash mid-write leaves the last write call half on disk; it never returned, so
			// nobody was told it was written. Cut it off so new writes follow whole frames.
			s.log.Warn("embedded vector store: dropping the torn end of its log (a crash mid-write leaves one)",
				"file", name, "offset", fr.offset, "bytes", info.Size()-fr.offset, "reason", err)
			if err := f.Truncate(fr.offset); err != nil {
				return fmt.Errorf("embedded vector store at %s: cutting the torn end of %s: %w", s.dir, name, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("embedded vector store at %s: %w", s.dir, err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("embedded vector store at %s: reading %s: %w", s.dir, name, err)
		}
		o, err := decodeOp(payload, s.dim)
		if err == nil && o.kind == opSnapshot {
			err = errors.New("a snapshot header in a log")
		}
		if err != nil {
			// The checksum matched, so these are the bytes that were written: not a torn write
			// but a format this build does not read. Refuse rather than drop acknowledged writes.
			return fmt.Errorf("embedded vector store at %s: %s at byte %d: %v (written by another version?)", s.dir, name, fr.offset, err)
		}
		s.apply(o)
	}
	s.walSize, s.walAlloc = fr.offset, fr.offset
	return nil
}

// zeroFrom reports whether f holds only zero bytes from offset to size.
func zeroFrom(f *os.File, offset, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for offset < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-offset)], offset)
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size-offset) {
			return false, err
		}
		offset += int64(n)
	}
	return true, nil
}

func (s *Store) apply(o op) {
	switch o.kind {
	case opUpsert:
		for _, r := range o.records {
			s.mem.upsert(r)
		}
	case opDeleteDoc:
		s.mem.removeSlots(s.mem.documentSlots(o.id, o.fromIndex))
	case opDeleteSource:
		s.mem.removeSlots(s.mem.sourceSlots(o.id))
	}
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func lockPath(dir string) string { return filepath.Join(dir, "LOCK") }

func walName(gen uint64) string { return fmt.Sprintf("%s%06d", walPrefix, gen) }

func parseWALName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, walPrefix)
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseUint(digits, 10, 64)
	return gen, err == nil
}

func readPID(dir string) int {
	b, err := os.ReadFile(lockPath(dir))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// writePID records the holder's pid for the in-use message; a failure costs only that.
func writePID(f *os.File) {
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
}

// writeFileAtomic replaces dir/name with data: temp file, fsync, rename, fsync the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes renames and new files in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there; NTFS journals the rename
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package embedded

import (
	"cmp"
	"context"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

// memory is the live data: records in slots, their unit vectors side by side in blocks so a
// search is a straight scan, and slot sets per document and per source for filters and deletes.
// Slots stay dense: a removal moves the last slot into the hole.
//
// memory does no locking; Store holds mu (and writeMu for writes) around every call.
type memory struct {
	dim int
	// blocks hold the vectors, blockSlots to a block: slot i is at (i%blockSlots)*dim in
	// blocks[i/blockSlots]. Every block is allocated whole, and only the last may be partly used.
	blocks   [][]float32
	recs     []vector.Record // Vector nil; the vector lives in blocks
	sizes    []int64         // encoded size of each record, for the compaction threshold
	byID     map[string]int
	byDoc    slotIndex
	bySource slotIndex
	live     int64 // sum of sizes
}

type slotIndex map[string]map[int]struct{}

func (ix slotIndex) add(key string, slot int) {
	set := ix[key]
	if set == nil {
		set = make(map[int]struct{})
		ix[key] = set
	}
	set[slot] = struct{}{}
}

func (ix slotIndex) remove(key string, slot int) {
	set := ix[key]
	delete(set, slot)
	if len(set) == 0 {
		delete(ix, key)
	}
}

func newMemory(dim int) *memory {
	return &memory{
		dim:      dim,
		byID:     make(map[string]int),
		byDoc:    make(slotIndex),
		bySource: make(slotIndex),
	}
}

func (m *memory) len() int { return len(m.recs) }

// blockSlots is how many vectors a block holds. Fixed blocks, not one slice of them all: adding a
// vector never copies the others. One slice grew by copying itself whole (by a quarter each
// time, once large), so a growing store moved about four times its vectors' bytes, and held the
// old and the new array at once while it did (and the write lock, which searches wait for).
const blockSlots = 1024

func (m *memory) vec(slot int) []float32 {
	o := (slot % blockSlots) * m.dim
	return m.blocks[slot/blockSlots][o : o+m.dim : o+m.dim]
}

// upsert stores r, whose vector must already be validated and normalised.
func (m *memory) upsert(r vector.Record) {
	size := recordSize(r)
	vec := r.Vector
	r.Vector = nil
	if slot, ok := m.byID[r.ID]; ok {
		old := m.recs[slot]
		if old.DocumentID != r.DocumentID {
			m.byDoc.remove(old.DocumentID, slot)
			m.byDoc.add(r.DocumentID, slot)
		}
		if old.SourceID != r.SourceID {
			m.bySource.remove(old.SourceID, slot)
			m.bySource.add(r.SourceID, slot)
		}
		m.recs[slot] = r
		copy(m.vec(slot), vec)
		m.live += size - m.sizes[slot]
		m.sizes[slot] = size
		return
	}
	slot := len(m.recs)
	if slot%blockSlots == 0 {
		m.blocks = append(m.blocks, make([]float32, blockSlots*m.dim))
	}
	copy(m.vec(slot), vec)
	m.recs = append(m.recs, r)
	m.sizes = append(m.sizes, size)
	m.live += size
	m.byID[r.ID] = slot
	m.byDoc.add(r.DocumentID, slot)
	m.bySource.add(r.SourceID, slot)
}

// documentSlots lists the document's slots holding chunks at fromIndex or beyond.
func (m *memory) documentSlots(documentID string, fromIndex int) []int {
	var slots []int
	for slot := range m.byDoc[documentID] {
		if m.recs[slot].ChunkIndex >= fromIndex {
			slots = append(slots, slot)
		}
	}
	return slots
}

func (m *memory) sourceSlots(sourceID string) []int {
	slots := make([]int, 0, len(m.bySource[sourceID]))
	for slot := range m.bySource[sourceID] {
		slots = append(slots, slot)
	}
	return slots
}

// removeSlots removes the records in slots. Going from the highest slot down means the record
// moved into a hole always comes from above every slot still to be removed, so it is never one
// of them.
func (m *memory) removeSlots(slots []int) {
	slices.Sort(slots)
	for i := len(slots) - 1; i >= 0; i-- {
		m.remove(slots[i])
	}
}

func (m *memory) remove(slot int) {
	r := m.recs[slot]
	delete(m.byID, r.ID)
	m.byDoc.remove(r.DocumentID, slot)
	m.bySource.remove(r.SourceID, slot)
	m.live -= m.sizes[slot]

	last := len(m.recs) - 1
	if slot != last {
		moved := m.recs[last]
		m.recs[slot] = moved
		m.sizes[slot] = m.sizes[last]
		copy(m.vec(slot), m.vec(last))
		m.byID[moved.ID] = slot
		m.byDoc.remove(moved.DocumentID, last)
		m.byDoc.add(moved.DocumentID, slot)
		m.bySource.remove(moved.SourceID, last)
		m.bySource.add(moved.SourceID, slot)
	}
	m.recs[last] = vector.Record{} // let the strings go
	m.recs = m.recs[:last]
	m.sizes = m.sizes[:last]
	if last%blockSlots == 0 { // the last block is empty now
		m.blocks[len(m.blocks)-1] = nil
		m.blocks = m.blocks[:len(m.blocks)-1]
	}
}

// candidates returns the slots a filter allows, or all=true when it allows everything (then a
// plain scan is cheaper than building a list).
func (m *memory) candidates(f vector.Filter) (slots []int, all bool) {
	switch {
	case len(f.DocumentIDs) > 0:
		var sources map[string]bool
		if len(f.SourceIDs) > 0 {
			sources = make(map[string]bool, len(f.SourceIDs))
			for _, s := range f.SourceIDs {
				sources[s] = true
			}
		}
		for _, doc := range dedupe(f.DocumentIDs) {
			for slot := range m.byDoc[doc] {
				if sources == nil || sources[m.recs[slot].SourceID] {
					slots = append(slots, slot)
				}
			}
		}
		return slots, false
	case len(f.SourceIDs) > 0:
		for _, src := range dedupe(f.SourceIDs) {
			for slot := range m.bySource[src] {
				slots = append(slots, slot)
			}
		}
		return slots, false
	default:
		return nil, true
	}
}

func (m *memory) count(f vector.Filter) int {
	switch {
	case len(f.DocumentIDs) > 0:
		slots, _ := m.candidates(f)
		return len(slots)
	case len(f.SourceIDs) > 0:
		n := 0
		for _, src := range dedupe(f.SourceIDs) {
			n += len(m.bySource[src])
		}
		return n
	default:
		return len(m.recs)
	}
}

func dedupe(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Scans of at least parallelRows vectors are split across CPUs, in shards of at least that many.
const parallelRows = 16384

// ctxCheckRows is how often a scan looks at its context.
const ctxCheckRows = 8192

// search returns the k slots nearest to q (a unit vector), best first.
func (m *memory) search(ctx context.Context, q []float32, k int, f vector.Filter) ([]scored, error) {
	slots, all := m.candidates(f)
	if !all {
		// In slot order the scan walks memory forwards, which the prefetcher rewards.
		slices.Sort(slots)
		top := newTopK(k, m.recs)
		for i, slot := range slots {
			if i%ctxCheckRows == ctxCheckRows-1 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			top.offer(dot(q, m.vec(slot)), slot)
		}
		return top.sorted(), nil
	}

	n := len(m.recs)
	shards := min(runtime.GOMAXPROCS(0), n/parallelRows)
	if shards <= 1 {
		top := newTopK(k, m.recs)
		if err := m.scan(ctx, q, 0, n, top); err != nil {
			return nil, err
		}
		return top.sorted(), nil
	}

	tops := make([]*topK, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for i := range shards {
		tops[i] = newTopK(k, m.recs)
		wg.Go(func() { errs[i] = m.scan(ctx, q, i*n/shards, (i+1)*n/shards, tops[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for _, t := range tops[1:] {
		for _, s := range t.items {
			tops[0].offer(s.score, s.slot)
		}
	}
	return tops[0].sorted(), nil
}

func (m *memory) scan(ctx context.Context, q []float32, from, to int, top *topK) error {
	dim := m.dim
	for slot := from; slot < to; {
		block := m.blocks[slot/blockSlots]
		end := min(to, (slot/blockSlots+1)*blockSlots)
		for o := (slot % blockSlots) * dim; slot < end; slot, o = slot+1, o+dim {
			if slot%ctxCheckRows == ctxCheckRows-1 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			top.offer(dot(q, block[o:o+dim:o+dim]), slot)
		}
	}
	return nil
}

// dot is the inner product of two vectors of the same length, unrolled so the compiler keeps
// four independent sums in registers.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i]*b[i] + a[i+4]*b[i+4]
		s1 += a[i+1]*b[i+1] + a[i+5]*b[i+5]
		s2 += a[i+2]*b[i+2] + a[i+6]*b[i+6]
		s3 += a[i+3]*b[i+3] + a[i+7]*b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

type scored struct {
	score float32
	slot  int
}

// topK keeps the k best (slot, score) pairs seen so far in a min-heap whose root is the worst
// kept. Equal scores are ordered by record id so results do not depend on slot order.
type topK struct {
	k     int
	items []scored
	recs  []vector.Record
}

func newTopK(k int, recs []vector.Record) *topK {
	return &topK{k: k, items: make([]scored, 0, min(k, 1024)), recs: recs}
}

// worse reports whether a ranks below b.
func (t *topK) worse(a, b scored) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return t.recs[a.slot].ID > t.recs[b.slot].ID
}

func (t *topK) offer(score float32, slot int) {
	s := scored{score, slot}
	if len(t.items) < t.k {
		t.items = append(t.items, s)
		t.up(len(t.items) - 1)
		return
	}
	if !t.worse(t.items[0], s) {
		return
	}
	t.items[0] = s
	t.down(0)
}

func (t *topK) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.worse(t.items[i], t.items[parent]) {
			return
		}
		t.items[i], t.items[parent] = t.items[parent], t.items[i]
		i = parent
	}
}

func (t *topK) down(i int) {
	n := len(t.items)
	for {
		least := i
		if l := 2*i + 1; l < n && t.worse(t.items[l], t.items[least]) {
			least = l
		}
		if r := 2*i + 2; r < n && t.worse(t.items[r], t.items[least]) {
			least = r
		}
		if least == i {
			return
		}
		t.items[i], t.items[least] = t.items[least], t.items[i]
		i = least
	}
}

// sorted returns the kept items best first.
func (t *topK) sorted() []scored {
	out := slices.Clone(t.items)
	slices.SortFunc(out, func(a, b scored) int {
		if t.worse(a, b) {
			return 1
		}
		if t.worse(b, a) {
			return -1
		}
		return cmp.Compare(a.slot, b.slot)
	})
	return out
}

// normalise returns v scaled to unit length, or ok=false if v has no direction (all zeros) or
// holds a NaN or an infinity.
func normalise(v []float32) (_ []float32, ok bool) {
	var sum float64
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		sum += f * f
	}
	if sum == 0 || math.IsInf(sum, 0) {
		return nil, false
	}
	inv := 1 / math.Sqrt(sum)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out, true
}

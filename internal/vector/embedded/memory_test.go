package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pipeline-dev/pipeline/internal/vector"
)

// The vectors live in fixed blocks: records added and removed across block boundaries (the last
// block filling, emptying and filling again) keep their own vectors, a scan finds each of them,
// and no block is held beyond the last record's.
func TestMemoryBlocksAcrossBoundaries(t *testing.T) {
	t.Parallel()
	const dim = 8
	rng := rand.New(rand.NewPCG(3, 4))
	m := newMemory(dim)
	want := map[string][]float32{}
	nextID := 0
	add := func(n int) {
		for range n {
			v := make([]float32, dim)
			v[rng.IntN(dim)] = 1
			v[rng.IntN(dim)] += float32(rng.Float64()) // distinct directions, stored as given
			id := fmt.Sprintf("r%d", nextID)
			nextID++
			m.upsert(vector.Record{ID: id, DocumentID: "d" + id, SourceID: "s", Vector: v})
			want[id] = v
		}
	}
	removeSome := func(n int) {
		var slots []int
		seen := map[int]bool{}
		for len(slots) < n && len(slots) < m.len() {
			if s := rng.IntN(m.len()); !seen[s] {
				seen[s] = true
				slots = append(slots, s)
			}
		}
		for _, s := range slots {
			delete(want, m.recs[s].ID)
		}
		m.removeSlots(slots)
	}
	check := func(step string) {
		t.Helper()
		if m.len() != len(want) {
			t.Fatalf("%s: %d records, want %d", step, m.len(), len(want))
		}
		if blocks := (m.len() + blockSlots - 1) / blockSlots; len(m.blocks) != blocks {
			t.Fatalf("%s: %d blocks held for %d records, want %d", step, len(m.blocks), m.len(), blocks)
		}
		for id, v := range want {
			slot, ok := m.byID[id]
			if !ok {
				t.Fatalf("%s: %s lost", step, id)
			}
			got := m.vec(slot)
			for i := range v {
				if got[i] != v[i] {
					t.Fatalf("%s: %s has vector %v, want %v", step, id, got, v)
				}
			}
		}
		// A scan visits every slot once and scores it with that slot's own vector.
		q := make([]float32, dim)
		for i := range q {
			q[i] = float32(rng.Float64())
		}
		top := newTopK(m.len()+1, m.recs)
		if err := m.scan(context.Background(), q, 0, m.len(), top); err != nil {
			t.Fatal(err)
		}
		if len(top.items) != m.len() {
			t.Fatalf("%s: the scan scored %d slots of %d", step, len(top.items), m.len())
		}
		for _, it := range top.items {
			if id := m.recs[it.slot].ID; it.score != dot(q, want[id]) {
				t.Fatalf("%s: the scan scored %s %v, want %v", step, id, it.score, dot(q, want[id]))
			}
		}
	}

	add(2*blockSlots + blockSlots/2)
	check("two and a half blocks")
	removeSome(blockSlots / 2) // the last block empties
	check("back to two blocks")
	removeSome(blockSlots/2 + 3) // into the second block
	check("under two blocks")
	add(blockSlots + 10) // across the boundary again
	check("refilled")
	removeSome(m.len()) // everything
	check("empty")
	add(5)
	check("started again")
}

// BenchmarkMemoryAppend adds 200k 384-dimensional vectors to an empty memory, as a store that
// grows by ingestion does, and reports vectors/s.
func BenchmarkMemoryAppend(b *testing.B) {
	const n, dim = 200_000, 384
	v := make([]float32, dim)
	v[0] = 1
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("doc-%d#%d", i/50, i%50)
	}
	for b.Loop() {
		m := newMemory(dim)
		for i, id := range ids {
			m.upsert(vector.Record{ID: id, DocumentID: id[:len(id)-3], SourceID: "s", ChunkIndex: i % 50, Vector: v})
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "vectors/s")
}

// Package vector defines the vector-store seam: chunks with their embeddings, stored under
// deterministic ids, searched by similarity and deleted by document or source. Implementations
// (embedded: the default; milvus: production) pass one conformance suite (vectortest).
// The package knows nothing about jobs, queues or how vectors are made.
package vector

import (
	"context"
	"fmt"
)

// Record is one chunk of one document with its embedding.
type Record struct {
	// ID is ChunkID(DocumentID, ChunkIndex); upserting the same id overwrites.
	ID          string
	SourceID    string
	DocumentID  string
	ChunkIndex  int
	Text        string
	Title       string
	URI         string
	HeadingPath string // "Install > Linux"
	StartOffset int64  // byte offsets of the chunk in the document's (Markdown) text
	EndOffset   int64
	Vector      []float32 // length Store.Dimension(), L2-normalised by the embedders
}

// ChunkID is the deterministic id of a document's chunk, so a re-run overwrites instead of
// adding: "<document id>:<index>".
func ChunkID(documentID string, index int) string {
	return fmt.Sprintf("%s:%d", documentID, index)
}

// Filter narrows a search or count. Empty fields match everything.
type Filter struct {
	SourceIDs   []string
	DocumentIDs []string
}

// Hit is a search result: the record (Vector may be left empty) and its similarity.
type Hit struct {
	Record
	// Score is the cosine similarity to the query, higher is nearer.
	Score float32
}

// Store holds records. All methods are safe for concurrent use. Transient failures (the store is
// unreachable, times out) are returned wrapped by errs.Transient so callers retry them.
type Store interface {
	// Dimension is the length every vector must have.
	Dimension() int
	// Upsert writes records, replacing any with the same ID. A vector of the wrong length is an
	// error and nothing of the call is written.
	Upsert(ctx context.Context, records []Record) error
	// DeleteDocument removes the document's chunks whose index is >= fromIndex (0: all of them),
	// which is how a re-processed document drops chunks beyond its new count.
	DeleteDocument(ctx context.Context, documentID string, fromIndex int) error
	// DeleteSource removes every chunk of the source.
	DeleteSource(ctx context.Context, sourceID string) error
	// Search returns up to topK records nearest to vector (cosine), best first, within filter.
	// A write that returned before Search was called is visible to it.
	Search(ctx context.Context, vector []float32, topK int, filter Filter) ([]Hit, error)
	// Count returns how many records match filter.
	Count(ctx context.Context, filter Filter) (int, error)
	// Close releases the store; an embedded store flushes to disk.
	Close() error
}

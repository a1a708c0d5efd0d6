// Package embed turns texts into vectors. The built-in hashing embedder is the default (offline,
// deterministic, lexical); the OpenAI-compatible client talks to any /v1/embeddings server.
// Implementations pass one conformance suite. The package knows nothing about chunks or stores.
package embed

import "context"

// Embedder embeds texts. It is safe for concurrent use. A failure that may go away (network,
// 429, 5xx, timeout) is returned wrapped by errs.Transient (with Retry-After when the server
// sent one); any other error is permanent for those texts.
type Embedder interface {
	// Embed returns one L2-normalised vector of length Dimension() per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dimension is the length of every vector.
	Dimension() int
	// Fingerprint identifies the embedding settings (kind, model, dimension): documents embedded
	// under another fingerprint are re-embedded rather than skipped as unchanged.
	Fingerprint() string
}

// Package chunk splits Markdown (and plain text) into chunks sized in tokens, for embedding.
// It knows nothing about documents' storage, embedders or vector stores.
package chunk

// Chunk is one piece of a document.
type Chunk struct {
	// Index is the chunk's position in the document, from 0.
	Index int
	// Text is the chunk's text: Source[Start:End] of the input, trimmed of surrounding whitespace
	// (Start and End point at the trimmed text).
	Text string
	// HeadingPath is the Markdown headings above the chunk, outermost first, e.g. ["Install", "Linux"].
	HeadingPath []string
	// Start and End are byte offsets of Text in the input.
	Start, End int
	// Tokens is Text's length in tokens.
	Tokens int
}

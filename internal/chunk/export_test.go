package chunk

// SetMaxSegment lowers the length above which Split cuts a text into segments, so tests can
// reach that path without a gigabyte of input.
func SetMaxSegment(c *Chunker, n int) { c.maxSegment = n }

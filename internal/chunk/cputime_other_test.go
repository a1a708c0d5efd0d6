//go:build !unix

package chunk_test

// cpuTime is not measured off Unix; BenchmarkSplit then reports wall time only.
func cpuTime() float64 { return 0 }

//go:build unix

package chunk_test

import "syscall"

// cpuTime returns the process's user and system CPU seconds. On a shared machine wall time
// includes waiting for a core; CPU time does not.
func cpuTime() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

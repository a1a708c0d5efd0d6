//go:build unix

package main

import (
	"syscall"
	"time"
)

type syscallRusage struct{}

// self is the process's user and system CPU time so far.
func (syscallRusage) self() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build !linux

package embedded

import "os"

// syncData makes the log's written bytes durable (fsync, or the platform's full sync).
func syncData(f *os.File) error { return f.Sync() }

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// held lists the directories this process has locked. flock alone cannot tell "this process
// holds it" from "a child being forked right now still shares our old descriptor": between
// fork and exec a child holds a copy of every descriptor, and with it the lock of a store this
// process has already closed.
var held = struct {
	sync.Mutex
	dirs map[string]bool
}{dirs: map[string]bool{}}

// lockDir takes an exclusive flock on dir/LOCK. The kernel drops it when the process dies, so a
// crash never leaves the directory locked. A second Open in the same process is refused at once.
func lockDir(dir string) (*os.File, error) {
	key, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	held.Lock()
	defer held.Unlock()
	if held.dirs[key] {
		return nil, &InUseError{Dir: dir, PID: os.Getpid()}
	}
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// A lock that this process released may still be held for a moment by a forked child's copy
	// of the descriptor; wait briefly for its exec before calling the store busy.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, err
		}
		if readPID(dir) != os.Getpid() || time.Now().After(deadline) {
			_ = f.Close()
			return nil, &InUseError{Dir: dir, PID: readPID(dir)}
		}
		time.Sleep(10 * time.Millisecond)
	}
	writePID(f)
	held.dirs[key] = true
	return f, nil
}

// unlockDir releases the lock; the file stays, since removing it would race a process that has
// just opened it.
func unlockDir(f *os.File) error {
	if key, err := filepath.Abs(filepath.Dir(f.Name())); err == nil {
		held.Lock()
		delete(held.dirs, key)
		held.Unlock()
	}
	return f.Close()
}

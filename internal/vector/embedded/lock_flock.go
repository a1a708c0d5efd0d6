//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package embedded

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive flock on dir/LOCK. The kernel drops it when the process dies, so a
// crash never leaves the directory locked. flock belongs to the open file, so a second Open in
// the same process is refused too.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: readPID(dir)}
		}
		return nil, err
	}
	writePID(f)
	return f, nil
}

// unlockDir releases the lock; the file stays, since removing it would race a process that has
// just opened it.
func unlockDir(f *os.File) error { return f.Close() }

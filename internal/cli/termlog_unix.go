//go:build unix

package cli

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// writeNoFollow writes data to path, creating or truncating it, but never
// through a symlink: the last component must not be one (O_NOFOLLOW), so a
// link planted at the termination log's path cannot make shiplock
// overwrite its target, nor create a file where a dangling link points.
func writeNoFollow(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is a symbolic link: refusing to follow it", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

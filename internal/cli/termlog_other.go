//go:build !unix

package cli

import (
	"fmt"
	"os"
)

// writeNoFollow writes data to path unless path is a symbolic link. Without
// O_NOFOLLOW the check and the write are two steps: good enough where
// Kubernetes termination logs do not exist.
func writeNoFollow(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: refusing to follow it", path)
	}
	return os.WriteFile(path, data, 0o644)
}

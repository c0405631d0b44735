//go:build !unix

package cli

import (
	"io/fs"
	"os"
)

func newDirFS(dir string) fs.FS { return os.DirFS(dir) }

package cli

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiplock/shiplock/migrate"
)

// TestTerminationLogNoSymlink: the termination log is written to a plain
// path, but never through a symbolic link, whether its target exists or
// not.
func TestTerminationLogNoSymlink(t *testing.T) {
	var logs bytesWriter
	g := &globals{log: slog.New(slog.NewTextHandler(&logs, nil))}
	dir := t.TempDir()
	runErr := &migrate.IntegrityError{}

	plain := filepath.Join(dir, "termination-log")
	g.writeTerminationLog(plain, nil, runErr)
	if b, err := os.ReadFile(plain); err != nil || len(b) == 0 {
		t.Fatalf("plain path: %q, %v", b, err)
	}

	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	logs = nil
	g.writeTerminationLog(link, nil, runErr)
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Fatalf("the symlink's target was overwritten: %q", b)
	}
	if len(logs) == 0 {
		t.Error("refusing the symlink was not logged")
	}

	dangling := filepath.Join(dir, "dangling")
	created := filepath.Join(dir, "created-through-link")
	if err := os.Symlink(created, dangling); err != nil {
		t.Fatal(err)
	}
	g.writeTerminationLog(dangling, nil, runErr)
	if _, err := os.Lstat(created); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file was created through a dangling symlink: %v", err)
	}
}

type bytesWriter []byte

func (w *bytesWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

var _ io.Writer = (*bytesWriter)(nil)

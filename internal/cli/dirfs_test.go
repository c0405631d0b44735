package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDirFSReadFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"empty.sql": nil,
		"small.sql": []byte("-- +goose Up\nSELECT 1;\n"),
		"large.sql": bytes.Repeat([]byte("SELECT 1; -- padding\n"), 50000),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := newDirFS(dir)
	for name, want := range files {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	if _, err := fs.ReadFile(fsys, "missing.sql"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := fs.ReadFile(fsys, "../etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadFile outside the directory = %v, want fs.ErrInvalid", err)
	}
}

package imagebuild_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shiplock/shiplock/internal/imagebuild"
)

// tinyIndex is a one-platform index with one file, cheap to build.
func tinyIndex(t *testing.T, data string) v1.ImageIndex {
	t.Helper()
	l, err := imagebuild.Layer([]imagebuild.File{{Path: "/bin/x", Mode: 0o755, Data: []byte(data)}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Image(nil, v1.Platform{OS: "linux", Architecture: "amd64"}, imagebuild.Config{Entrypoint: []string{"/bin/x"}, User: "65532"}, time.Unix(0, 0), l)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := imagebuild.Index(img)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestAppendLayoutAndMigrationImage: a migration image built from a
// layout's release image is added to that layout under its name, next to
// the images already there; adding a name again repoints it.
func TestAppendLayoutAndMigrationImage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	rel := tinyIndex(t, "release")
	if err := imagebuild.WriteLayout(dir, []imagebuild.Named{{Name: "r/shiplock:dev", Index: rel}}); err != nil {
		t.Fatal(err)
	}
	mig := t.TempDir()
	os.WriteFile(filepath.Join(mig, "00001_a.sql"), []byte("-- +goose Up\nSELECT 1;\n"), 0o644)
	os.WriteFile(filepath.Join(mig, "notes.txt"), []byte("not a migration"), 0o644)
	m1, err := imagebuild.MigrationImage(dir, "r/shiplock:dev", mig)
	if err != nil {
		t.Fatal(err)
	}
	again, err := imagebuild.MigrationImage(dir, "r/shiplock:dev", mig)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, m1) != digest(t, again) {
		t.Errorf("the same migrations gave two digests: %s, %s", digest(t, m1), digest(t, again))
	}
	if err := imagebuild.AppendLayout(dir, imagebuild.Named{Name: "r/m:1", Index: m1}); err != nil {
		t.Fatal(err)
	}
	got, err := imagebuild.LayoutIndex(dir, "r/m:1")
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, m1) {
		t.Fatalf("r/m:1 is %s, want %s", digest(t, got), digest(t, m1))
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := got.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, img)
	if _, ok := fs["/migrations/00001_a.sql"]; !ok {
		t.Errorf("migration image lacks migrations/00001_a.sql: %v", fs)
	}
	if _, ok := fs["/migrations/notes.txt"]; ok {
		t.Errorf("migration image holds a file that is not a migration")
	}
	if _, ok := fs["/bin/x"]; !ok {
		t.Errorf("migration image lacks the release image's files: %v", fs)
	}
	if r, err := imagebuild.LayoutIndex(dir, "r/shiplock:dev"); err != nil || digest(t, r) != digest(t, rel) {
		t.Errorf("release image after the append: %v", err)
	}

	// The name again, other content: one entry, the new index.
	os.WriteFile(filepath.Join(mig, "00002_b.sql"), []byte("-- +goose Up\nSELECT 2;\n"), 0o644)
	m2, err := imagebuild.MigrationImage(dir, "r/shiplock:dev", mig)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.AppendLayout(dir, imagebuild.Named{Name: "r/m:1", Index: m2}); err != nil {
		t.Fatal(err)
	}
	if got, err := imagebuild.LayoutIndex(dir, "r/m:1"); err != nil || digest(t, got) != digest(t, m2) {
		t.Fatalf("r/m:1 after the second append: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 {
		t.Errorf("index.json has %d entries, want 2 (release, r/m:1): %s", len(idx.Manifests), raw)
	}
	if _, err := imagebuild.MigrationImage(dir, "r/none:dev", mig); err == nil {
		t.Error("no error for a release image the layout lacks")
	}
}

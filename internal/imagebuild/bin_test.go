package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shiplock/shiplock/internal/imagebuild"
)

// fileData returns the content of the file at name in img's layers.
func fileData(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	var data []byte
	found := false
	walkLayers(t, img, func(h *tar.Header, r io.Reader) {
		if "/"+h.Name != name {
			return
		}
		var err error
		if data, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		found = true
	})
	if !found {
		t.Fatalf("no %s in the image", name)
	}
	return data
}

// TestCustomBinary: the release image built with Options.Binary (the
// -bin flag) holds that binary, byte for byte, as its shiplock: here a
// team's own shiplock with goose-registered Go migrations compiled in,
// which the image's binary then knows. A binary for another platform, or
// one linked dynamically, is refused before anything is built.
func TestCustomBinary(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	bin := filepath.Join(dir, "myshiplock")
	if err := imagebuild.GoBuild(ctx, moduleDir, "./goosemigrations/testdata/myshiplock", imagebuild.PodTags, p, bin); err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.Build(ctx, imagebuild.Options{ModuleDir: moduleDir, WorkDir: filepath.Join(dir, "work"), Binary: bin, Platforms: []v1.Platform{p}})
	if err != nil {
		t.Fatal(err)
	}
	img := image(t, res, "shiplock:dev", runtime.GOARCH)
	inImage := fileData(t, img, "/usr/local/bin/shiplock")
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inImage, want) {
		t.Fatalf("the image's shiplock (%d bytes) is not the given binary (%d bytes)", len(inImage), len(want))
	}
	// Run the image's binary: the Go migrations are compiled in.
	extracted := filepath.Join(dir, "from-image")
	if err := os.WriteFile(extracted, inImage, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, "validate", "--dir", filepath.Join(moduleDir, "goosemigrations", "testdata", "gomig")).CombinedOutput()
	if err != nil || strings.Contains(string(out), "not compiled into this binary") || !strings.Contains(string(out), "ok: 6 migrations") {
		t.Fatalf("the image's binary: validate = %v\n%s", err, out)
	}

	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	for _, tc := range []struct {
		name, bin string
		p         v1.Platform
		want      string
	}{
		{"another platform", bin, v1.Platform{OS: "linux", Architecture: other}, "is built for"},
		{"dynamically linked", "/bin/ls", p, "dynamically linked"},
		{"not an executable", filepath.Join(moduleDir, "go.mod"), p, "not a Linux executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := imagebuild.Build(ctx, imagebuild.Options{ModuleDir: moduleDir, WorkDir: filepath.Join(t.TempDir(), "work"), Binary: tc.bin, Platforms: []v1.Platform{tc.p}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := imagebuild.Build(ctx, imagebuild.Options{ModuleDir: moduleDir, Binary: bin}); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("Build with two platforms = %v, want an error asking for one", err)
	}
}

// Package imagebuild builds shiplock's container images without a Docker
// daemon: static Go binaries on an empty base, reproducibly (the same
// sources and Go toolchain give the same digests), for several platforms in
// one OCI index. It is a build tool: the shiplock binary does not import it.
//
// Reproducibility comes from fixed inputs only: every tar entry has
// uid/gid 0, a fixed mode and the epoch as its time, entries are sorted,
// gzip headers carry no time or name, the config's created time is the
// epoch (or SOURCE_DATE_EPOCH, which the caller passes as [Options.Epoch]),
// and binaries are built with -trimpath -buildvcs=false -ldflags '-s -w'.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The layout every shiplock image shares; the Dockerfiles state the same
// (a test compares them) and the rendered manifests' bare command
// "shiplock" resolves to BinDir/shiplock through DefaultPath.
const (
	// BinDir holds the image's binary: a directory of the default PATH.
	BinDir = "/usr/local/bin"
	// DefaultPath is the PATH runtimes use when an image sets none; the
	// images set it themselves so that no runtime's default matters.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// User is distroless' "nonroot", numeric so that runAsNonRoot can check it.
	User = "65532:65532"
	// CACertsPath is where Go's crypto/x509 looks first on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// MigrationsDir is the migration image's directory, the release
	// image's SHIPLOCK_DIR.
	MigrationsDir = "/migrations"
	// PodTags are the build tags of the binary that runs in pods: neither
	// the Kubernetes client nor the embedded SQLite engine.
	PodTags = "nokube,nosqlite"
)

// Platforms are the platforms the release is built for.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// File is one regular file of a layer. Directories above it are added with
// mode 0755.
type File struct {
	Path string // absolute path in the image
	Mode int64  // permission bits
	Data []byte
}

// Layer returns a gzip-compressed OCI layer holding files, owned by 0:0 and
// dated at epoch, in sorted order, with their parent directories.
func Layer(files []File, epoch time.Time) (v1.Layer, error) {
	entries := map[string]*tar.Header{}
	data := map[string][]byte{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean(f.Path), "/")
		if p == "" || p == "." || !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("imagebuild: file path %q is not absolute", f.Path)
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			entries[d+"/"] = &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}
		}
		entries[p] = &tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: f.Mode, Size: int64(len(f.Data))}
		data[p] = f.Data
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		h := entries[n]
		h.ModTime, h.Format = epoch.UTC(), tar.FormatPAX
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression) // header: no name, no time
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Config is what an image runs.
type Config struct {
	Entrypoint, Cmd, Env []string
	User, WorkingDir     string
}

// Image returns a single-platform OCI image: base (nil: scratch) plus
// layers, with cfg, created at epoch.
func Image(base v1.Image, p v1.Platform, cfg Config, epoch time.Time, layers ...v1.Layer) (v1.Image, error) {
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: epoch.UTC()}, CreatedBy: "shiplock-image"}}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: epoch.UTC()}
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.Env = cfg.Env
	cf.Config.User = cfg.User
	cf.Config.WorkingDir = cfg.WorkingDir
	return mutate.ConfigFile(img, cf)
}

// Index returns an OCI index of imgs, each described with its platform.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := cf.Platform()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return idx, nil
}

// GoBuild builds the Go package pkg (run from dir, a module directory) for
// p into out: static (CGO_ENABLED=0) and reproducible. flags go after the
// defaults, so "-buildvcs=true" stamps the commit (a release build).
func GoBuild(ctx context.Context, dir, pkg, tags string, p v1.Platform, out string, flags ...string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, msg)
	}
	return nil
}

// BinaryImage is a static binary on scratch at BinDir/name, the default
// PATH set, running as User.
type BinaryImage struct {
	Name  string // binary name: BinDir/Name is the entrypoint
	Files []File // more files of the same layer (CA certificates)
	Env   []string
	Cmd   []string
}

// Build returns the image of binary (the file at binPath) for p.
func (b BinaryImage) Build(binPath string, p v1.Platform, epoch time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	files := append([]File{{Path: path.Join(BinDir, b.Name), Mode: 0o755, Data: bin}}, b.Files...)
	l, err := Layer(files, epoch)
	if err != nil {
		return nil, err
	}
	return Image(nil, p, Config{
		Entrypoint: []string{path.Join(BinDir, b.Name)},
		Cmd:        b.Cmd,
		Env:        append([]string{"PATH=" + DefaultPath}, b.Env...),
		User:       User,
	}, epoch, l)
}

// ShiplockImage describes the release image; caCerts is the CA bundle.
func ShiplockImage(caCerts []byte) BinaryImage {
	return BinaryImage{
		Name:  "shiplock",
		Files: []File{{Path: CACertsPath, Mode: 0o644, Data: caCerts}},
		Env:   []string{"SHIPLOCK_DIR=" + MigrationsDir},
		Cmd:   []string{"up"},
	}
}

// ReadCACerts reads the build host's CA bundle (Debian's ca-certificates
// package writes it at CACertsPath); an absent or empty bundle is an error,
// never an image without roots.
func ReadCACerts(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: CA certificates: %w (install ca-certificates)", err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("imagebuild: CA certificates: %s holds no certificate", file)
	}
	return b, nil
}

// MigrationFiles reads the migration files of dir (not below it) whose
// version is at most maxVersion (0: all), as files of MigrationsDir: the
// *.sql files and the numbered *.go files, as a Dockerfile's COPY of the
// directory would. A Go migration's file in the image makes a shiplock
// that lacks it compiled in refuse the directory (an unregistered Go
// migration) instead of applying the SQL around it and skipping it.
func MigrationFiles(dir string, maxVersion int64) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		name := e.Name()
		goFile := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") && name != "" && name[0] >= '0' && name[0] <= '9'
		if e.IsDir() || !(strings.HasSuffix(name, ".sql") || goFile) {
			continue
		}
		if maxVersion > 0 {
			var v int64
			if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err != nil || v > maxVersion {
				continue
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: path.Join(MigrationsDir, e.Name()), Mode: 0o644, Data: b})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("imagebuild: no migrations in %s", dir)
	}
	return files, nil
}

// WithLayer returns idx with one more layer, holding files, on each of its
// images (a migration image is the release image plus its migrations).
func WithLayer(idx v1.ImageIndex, files []File, epoch time.Time) (v1.ImageIndex, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	l, err := Layer(files, epoch)
	if err != nil {
		return nil, err
	}
	var imgs []v1.Image
	for _, d := range im.Manifests {
		base, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		cf, err := base.ConfigFile()
		if err != nil {
			return nil, err
		}
		c := cf.Config
		img, err := Image(base, *cf.Platform(), Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, User: c.User, WorkingDir: c.WorkingDir}, epoch, l)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	if len(imgs) == 0 {
		return nil, errors.New("imagebuild: empty index")
	}
	return Index(imgs...)
}

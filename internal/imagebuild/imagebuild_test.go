package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/shiplock/shiplock/internal/imagebuild"
)

const moduleDir = "../.."

var built struct {
	once sync.Once
	root string
	res  [2]*imagebuild.Result
	dirs [2]string
	err  error
}

// TestMain removes what build wrote.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.root != "" {
		os.RemoveAll(built.root)
	}
	os.Exit(code)
}

// build builds everything (release, accounts' app and migration images,
// both platforms) twice, in two work directories, and writes each as a
// layout and an archive; the Go build cache makes the second build cheap.
func build(t *testing.T) ([2]*imagebuild.Result, [2]string) {
	t.Helper()
	b := &built
	b.once.Do(func() {
		root, err := os.MkdirTemp("", "shiplock-imagebuild-")
		if err != nil {
			b.err = err
			return
		}
		b.root = root
		apps, ms := imagebuild.Accounts(moduleDir)
		for i := range b.res {
			b.dirs[i] = filepath.Join(root, string(rune('a'+i)))
			b.res[i], b.err = imagebuild.Build(context.Background(), imagebuild.Options{
				ModuleDir: moduleDir, WorkDir: filepath.Join(b.dirs[i], "bin"),
				Apps: apps, Migrations: ms,
			})
			if b.err != nil {
				return
			}
			if b.err = imagebuild.WriteLayout(filepath.Join(b.dirs[i], "layout"), b.res[i].Images); b.err != nil {
				return
			}
			if b.err = imagebuild.WriteArchive(filepath.Join(b.dirs[i], "layout"), filepath.Join(b.dirs[i], "images.oci.tar"), time.Unix(0, 0)); b.err != nil {
				return
			}
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.res, b.dirs
}

func digest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func image(t *testing.T, res *imagebuild.Result, name, arch string) v1.Image {
	t.Helper()
	for _, n := range res.Images {
		if n.Name != name {
			continue
		}
		im, err := n.Index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == arch {
				img, err := n.Index.Image(m.Digest)
				if err != nil {
					t.Fatal(err)
				}
				return img
			}
		}
		t.Fatalf("%s has no linux/%s image: %+v", name, arch, im.Manifests)
	}
	t.Fatalf("no image %s", name)
	return nil
}

// TestReproducible: the same sources give the same digests and the same
// archive bytes.
func TestReproducible(t *testing.T) {
	res, dirs := build(t)
	var names []string
	for i, n := range res[0].Images {
		names = append(names, n.Name)
		if a, b := digest(t, n.Index), digest(t, res[1].Images[i].Index); a != b {
			t.Errorf("%s: %s, then %s", n.Name, a, b)
		}
	}
	want := "shiplock:dev accounts-migrate:v1 accounts-migrate:v2 accounts:v1 accounts:v2"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("images %s, want %s", got, want)
	}
	a, err := os.ReadFile(filepath.Join(dirs[0], "images.oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dirs[1], "images.oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("the two archives differ (%d and %d bytes)", len(a), len(b))
	}
	for _, n := range res[0].Images {
		t.Logf("%s %s", n.Name, digest(t, n.Index))
	}
}

type entry struct {
	mode     int64
	uid, gid int
	size     int64
	time     time.Time
}

// files lists every entry of img's layers, flattened.
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	walkLayers(t, img, func(h *tar.Header, _ io.Reader) {
		out["/"+strings.TrimSuffix(h.Name, "/")] = entry{h.Mode, h.Uid, h.Gid, h.Size, h.ModTime}
	})
	return out
}

// walkLayers calls fn with every entry of img's layers, in order.
func walkLayers(t *testing.T, img v1.Image, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fn(h, tr)
		}
		rc.Close()
	}
}

func TestReleaseImage(t *testing.T) {
	res, _ := build(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			img := image(t, res[0], "shiplock:dev", arch)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != arch || !cf.Created.Time.Equal(time.Unix(0, 0)) {
				t.Errorf("config: %s/%s created %s", cf.OS, cf.Architecture, cf.Created)
			}
			fs := files(t, img)
			want := []string{"/etc", "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/shiplock"}
			var got []string
			for p, e := range fs {
				got = append(got, p)
				if e.uid != 0 || e.gid != 0 || !e.time.Equal(time.Unix(0, 0)) {
					t.Errorf("%s: owner %d:%d, time %s", p, e.uid, e.gid, e.time)
				}
			}
			if strings.Join(sorted(got), " ") != strings.Join(want, " ") {
				t.Errorf("files %v, want %v (no shell, nothing else)", sorted(got), want)
			}
			if fs["/usr/local/bin/shiplock"].mode != 0o755 || fs[imagebuild.CACertsPath].mode != 0o644 {
				t.Errorf("modes: binary %o, CA %o", fs["/usr/local/bin/shiplock"].mode, fs[imagebuild.CACertsPath].mode)
			}
			if fs[imagebuild.CACertsPath].size < 1000 {
				t.Errorf("CA bundle of %d bytes", fs[imagebuild.CACertsPath].size)
			}
			size, err := imagebuild.ImageSize(img)
			if err != nil {
				t.Fatal(err)
			}
			bin := res[0].BinarySize["linux/"+arch]
			if bin == 0 || float64(size) > 1.1*float64(bin) {
				t.Errorf("image %d bytes, binary %d: more than 1.1x", size, bin)
			}
			t.Logf("linux/%s: image %d bytes, binary %d bytes", arch, size, bin)
		})
	}
}

func TestMigrationImages(t *testing.T) {
	res, _ := build(t)
	release := files(t, image(t, res[0], "shiplock:dev", "arm64"))
	for name, last := range map[string]string{"accounts-migrate:v1": "20261106090000", "accounts-migrate:v2": "20261120090000"} {
		img := image(t, res[0], name, "arm64")
		fs := files(t, img)
		var migs []string
		for p, e := range fs {
			if _, ok := release[p]; ok {
				continue
			}
			if p == imagebuild.MigrationsDir {
				continue
			}
			if path.Dir(p) != imagebuild.MigrationsDir || e.mode != 0o644 {
				t.Errorf("%s: unexpected %s (mode %o)", name, p, e.mode)
			}
			migs = append(migs, path.Base(p))
		}
		migs = sorted(migs)
		if len(migs) == 0 || !strings.HasPrefix(migs[len(migs)-1], last+"_") {
			t.Errorf("%s: migrations %v, want the last to be %s", name, migs, last)
		}
		cfg, _ := img.ConfigFile()
		rel, _ := image(t, res[0], "shiplock:dev", "arm64").ConfigFile()
		if a, b := mustJSON(cfg.Config), mustJSON(rel.Config); a != b {
			t.Errorf("%s runs %s, the release image %s", name, a, b)
		}
	}
}

// TestPush pushes to a registry on loopback and pulls the same digests.
func TestPush(t *testing.T) {
	res, _ := build(t)
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	imgs := res[0].Images[:2]
	if err := imagebuild.Push(context.Background(), host+"/shiplock", imgs); err != nil {
		t.Fatal(err)
	}
	for _, n := range imgs {
		ref, err := name.ParseReference(host+"/shiplock/"+n.Name, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := digest(t, idx), digest(t, n.Index); a != b {
			t.Errorf("%s: pulled %s, pushed %s", n.Name, a, b)
		}
	}
}

// TestLayoutNames: the layout names each index, and reads back the digests.
func TestLayoutNames(t *testing.T) {
	res, dirs := build(t)
	p, err := layout.FromPath(filepath.Join(dirs[0], "layout"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(res[0].Images) {
		t.Fatalf("layout holds %d indexes, want %d", len(im.Manifests), len(res[0].Images))
	}
	for i, m := range im.Manifests {
		n := res[0].Images[i]
		if m.Annotations[imagebuild.RefName] != n.Name || m.Digest != digest(t, n.Index) {
			t.Errorf("layout entry %d: %s %s, want %s %s", i, m.Annotations[imagebuild.RefName], m.Digest, n.Name, digest(t, n.Index))
		}
	}
}

func TestReadCACertsMissing(t *testing.T) {
	if _, err := imagebuild.ReadCACerts(filepath.Join(t.TempDir(), "none.crt")); err == nil {
		t.Error("no error for a missing CA bundle")
	}
	empty := filepath.Join(t.TempDir(), "empty.crt")
	os.WriteFile(empty, nil, 0o644)
	if _, err := imagebuild.ReadCACerts(empty); err == nil {
		t.Error("no error for an empty CA bundle")
	}
}

// TestLayerSortedAndFixed: the same files in any order give one digest.
func TestLayerSortedAndFixed(t *testing.T) {
	a := []imagebuild.File{{Path: "/b/x", Mode: 0o644, Data: []byte("x")}, {Path: "/a/y", Mode: 0o755, Data: []byte("y")}}
	b := []imagebuild.File{a[1], a[0]}
	la, err := imagebuild.Layer(a, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := imagebuild.Layer(b, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if da != db {
		t.Errorf("order changes the digest: %s, %s", da, db)
	}
	if _, err := imagebuild.Layer([]imagebuild.File{{Path: "rel", Data: nil}}, time.Unix(0, 0)); err == nil {
		t.Error("relative path accepted")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

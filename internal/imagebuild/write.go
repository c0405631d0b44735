package imagebuild

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefName is the OCI annotation that names an index in a layout's
// index.json ("shiplock:dev"); tools such as skopeo and the test node agent
// find images by it.
const RefName = "org.opencontainers.image.ref.name"

// Named is an index and the name ("repository:tag") it is stored under.
type Named struct {
	Name  string
	Index v1.ImageIndex
}

// WriteLayout writes images as an OCI image layout in dir (which must not
// exist or be empty), in the given order, each under its name.
func WriteLayout(dir string, images []Named) error {
	p, err := layout.Write(dir, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return err
	}
	for _, n := range images {
		if err := p.AppendIndex(n.Index, layout.WithAnnotations(map[string]string{RefName: n.Name})); err != nil {
			return fmt.Errorf("write %s: %w", n.Name, err)
		}
	}
	return nil
}

// WriteArchive writes the layout in dir as one tar file (an "oci-archive":
// skopeo copy oci-archive:FILE:NAME ...), entries sorted, owned by 0:0 and
// dated at epoch, so the same layout gives the same bytes.
func WriteArchive(dir, file string, epoch time.Time) (err error) {
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch.UTC(), Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		case fi.Mode().IsRegular():
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
		default:
			return fmt.Errorf("imagebuild: %s: not a file or directory", p)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			r, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, r)
			r.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// Push pushes each index to registry ("host:port" or "host:port/prefix")
// under its name. A loopback registry is spoken to over plain HTTP.
func Push(ctx context.Context, registry string, images []Named) error {
	for _, n := range images {
		ref, err := name.ParseReference(registry+"/"+n.Name, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(ref, n.Index, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return nil
}

// appendMu serialises AppendLayout's read-modify-write of index.json within
// a process; index.json is replaced by a rename, so a reader (the test node
// agent) never sees it half written. Appends from several processes at once
// are not supported.
var appendMu sync.Mutex

// AppendLayout adds images to the OCI layout in dir, each under its name: a
// name already present is pointed at the new index (the old entry is
// dropped, its blobs stay). Blobs already in the layout are not rewritten.
func AppendLayout(dir string, images ...Named) error {
	appendMu.Lock()
	defer appendMu.Unlock()
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	im = im.DeepCopy()
	for _, n := range images {
		if err := p.WriteIndex(n.Index); err != nil {
			return fmt.Errorf("write %s: %w", n.Name, err)
		}
		d, err := partial.Descriptor(n.Index)
		if err != nil {
			return err
		}
		d.Annotations = map[string]string{RefName: n.Name}
		kept := im.Manifests[:0]
		for _, m := range im.Manifests {
			if m.Annotations[RefName] != n.Name {
				kept = append(kept, m)
			}
		}
		im.Manifests = append(kept, *d)
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".index.json.*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "index.json")); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// LayoutIndex returns the index stored under name in the layout in dir.
func LayoutIndex(dir, name string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		if m := im.Manifests[i]; m.Annotations[RefName] == name {
			return ii.ImageIndex(m.Digest)
		}
	}
	return nil, fmt.Errorf("imagebuild: %s: no image %s", dir, name)
}

// MigrationImage is the image stored under release in the layout in dir
// plus a layer with the *.sql files of migrations in MigrationsDir, dated
// at the Unix epoch (the same files give the same digest).
func MigrationImage(dir, release, migrations string) (v1.ImageIndex, error) {
	base, err := LayoutIndex(dir, release)
	if err != nil {
		return nil, err
	}
	files, err := MigrationFiles(migrations, 0)
	if err != nil {
		return nil, err
	}
	return WithLayer(base, files, time.Unix(0, 0))
}

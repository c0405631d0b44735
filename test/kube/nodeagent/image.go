package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// imageStore serves images from an OCI image layout (what
// cmd/shiplock-image writes): index.json names each image index by the
// annotation org.opencontainers.image.ref.name ("shiplock.test/shiplock:dev").
// An image is unpacked once per manifest, for the node's architecture, under
// cache/<digest>/rootfs.
type imageStore struct {
	dir, cache string

	mu    sync.Mutex        // guards refs and roots
	refs  map[string]string // name -> index digest
	roots map[string]*unpacked
}

// ociImage is an image ready to run: its rootfs and its config.
type ociImage struct {
	ref, digest string // manifest digest
	rootfs      string
	config      imageConfig
}

type imageConfig struct {
	User       string   `json:"User"`
	Env        []string `json:"Env"`
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	WorkingDir string   `json:"WorkingDir"`
}

type unpacked struct {
	once sync.Once
	img  *ociImage
	err  error
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

func newImageStore(dir, cache string) (*imageStore, error) {
	s := &imageStore{dir: dir, cache: cache, refs: map[string]string{}, roots: map[string]*unpacked{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the names of index.json; s.mu is held or s is not shared yet.
// Tests add images (per-test migration images) while the node runs, by
// replacing index.json with a rename, so a name this node does not know
// yet is looked up again in the file.
func (s *imageStore) load() error {
	var idx struct{ Manifests []descriptor }
	if err := s.readJSON("index.json", &idx); err != nil {
		return fmt.Errorf("image store %s: %w", s.dir, err)
	}
	refs := map[string]string{}
	for _, d := range idx.Manifests {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			refs[n] = d.Digest // a later entry of a name wins
		}
	}
	s.refs = refs
	return nil
}

// lookup returns the index digest of ref, re-reading index.json when ref
// is not known.
func (s *imageStore) lookup(ref string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.refs[normalize(ref)]; ok {
		return d, true
	}
	if err := s.load(); err != nil {
		return "", false
	}
	d, ok := s.refs[normalize(ref)]
	return d, ok
}

func (s *imageStore) blob(digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(s.dir, "blobs", alg, hex)
}

func (s *imageStore) readJSON(rel string, v any) error {
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *imageStore) readBlobJSON(digest string, v any) error {
	b, err := os.ReadFile(s.blob(digest))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// normalize gives an image reference the tag "latest" when it has none.
func normalize(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref
	}
	return ref + ":latest"
}

// has reports whether the store holds ref.
func (s *imageStore) has(ref string) bool {
	if s == nil {
		return false
	}
	_, ok := s.lookup(ref)
	return ok
}

// pull unpacks ref for this node's platform (once) and returns it.
func (s *imageStore) pull(ref string) (*ociImage, error) {
	idxDigest, ok := s.lookup(ref)
	if !ok {
		return nil, fmt.Errorf("%s: not found", ref)
	}
	var idx struct {
		MediaType string
		Manifests []descriptor
	}
	if err := s.readBlobJSON(idxDigest, &idx); err != nil {
		return nil, err
	}
	var manifest string
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			manifest = d.Digest
		}
	}
	if manifest == "" {
		return nil, fmt.Errorf("no matching manifest for linux/%s in the manifest list entries", runtime.GOARCH)
	}
	s.mu.Lock()
	u, ok := s.roots[manifest]
	if !ok {
		u = &unpacked{}
		s.roots[manifest] = u
	}
	s.mu.Unlock()
	u.once.Do(func() { u.img, u.err = s.unpack(ref, manifest) })
	return u.img, u.err
}

func (s *imageStore) unpack(ref, manifest string) (*ociImage, error) {
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	if err := s.readBlobJSON(manifest, &m); err != nil {
		return nil, err
	}
	var cf struct{ Config imageConfig }
	if err := s.readBlobJSON(m.Config.Digest, &cf); err != nil {
		return nil, err
	}
	_, hex, _ := strings.Cut(manifest, ":")
	root := filepath.Join(s.cache, hex, "rootfs")
	_ = os.RemoveAll(filepath.Dir(root))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if err := extractLayer(s.blob(l.Digest), root); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	return &ociImage{ref: ref, digest: manifest, rootfs: root, config: cf.Config}, nil
}

// extractLayer applies a gzip or plain tar layer to root: regular files,
// directories and symlinks with their modes and owners; whiteouts remove.
func extractLayer(file, root string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if zr, err := gzip.NewReader(f); err == nil {
		defer zr.Close()
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		target := filepath.Join(root, name)
		if base := filepath.Base(name); strings.HasPrefix(base, ".wh.") {
			_ = os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			_ = os.MkdirAll(filepath.Dir(target), 0o755)
			_ = os.Remove(target)
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.MkdirAll(filepath.Dir(target), 0o755)
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
			_ = os.Lchown(target, h.Uid, h.Gid)
			continue
		default:
			continue
		}
		if err := os.Chmod(target, os.FileMode(h.Mode)&os.ModePerm); err != nil {
			return err
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
	}
}

package imagebuild

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options say what [Build] builds. The zero value of each optional field
// is documented on it.
type Options struct {
	// ModuleDir is shiplock's module root (where go.mod is).
	ModuleDir string
	// WorkDir receives the binaries (one directory per platform).
	WorkDir string
	// Prefix goes before every image name ("shiplock.test/" gives
	// "shiplock.test/shiplock:dev"); empty: none.
	Prefix string
	// Tag of the release image; empty: "dev".
	Tag string
	// Platforms; nil: [Platforms].
	Platforms []v1.Platform
	// CACerts is the CA bundle file; empty: CACertsPath on the build host.
	CACerts string
	// Epoch dates every file and the images; the zero value is the Unix
	// epoch (SOURCE_DATE_EPOCH=0).
	Epoch time.Time
	// Migrations are migration images: the release image plus a directory.
	Migrations []Migration
	// Apps are other Go programs packaged like shiplock (the accounts example).
	Apps []App
	// Binary is a shiplock binary built elsewhere, put in the release
	// image instead of building ./cmd/shiplock: a team's own shiplock with
	// its Go migrations compiled in (package shiplockmain). It must be a
	// static Linux executable for the one platform of Platforms. Empty:
	// build ./cmd/shiplock.
	Binary string
	// BuildFlags are more go build flags for every binary ("-buildvcs=true").
	BuildFlags []string
}

// Migration is a migration image: Name ("accounts-migrate:v1") holds the
// *.sql files of Dir up to MaxVersion (0: all) in MigrationsDir.
type Migration struct {
	Name       string
	Dir        string
	MaxVersion int64
}

// App is a Go program on scratch at BinDir/Binary, running as User, built
// from Package with Tags.
type App struct {
	Name, Package, Tags, Binary string
}

// Result is what Build built, in order: the release image first.
type Result struct {
	Images []Named
	// BinarySize is the size of the shiplock binary per platform
	// ("linux/amd64").
	BinarySize map[string]int64
}

// Accounts are the images of the accounts example, releases v1 and v2:
// the app (built without and with the v2 tag) and its migrations (v1's
// stop at 20261106090000, v2 adds 20261120090000).
func Accounts(moduleDir string) ([]App, []Migration) {
	dir := filepath.Join(moduleDir, "examples", "accounts", "migrations")
	return []App{
			{Name: "accounts:v1", Package: "./examples/accounts", Binary: "accounts"},
			{Name: "accounts:v2", Package: "./examples/accounts", Tags: "v2", Binary: "accounts"},
		}, []Migration{
			{Name: "accounts-migrate:v1", Dir: dir, MaxVersion: 20261106090000},
			{Name: "accounts-migrate:v2", Dir: dir},
		}
}

// Build builds the release image shiplock:Tag for every platform and the
// migration and app images of o.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Tag == "" {
		o.Tag = "dev"
	}
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	if o.CACerts == "" {
		o.CACerts = CACertsPath
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Unix(0, 0)
	}
	if o.Binary != "" {
		if len(o.Platforms) != 1 {
			return nil, fmt.Errorf("binary %s is built for one platform: give exactly one (have %d)", o.Binary, len(o.Platforms))
		}
		if err := CheckBinary(o.Binary, o.Platforms[0]); err != nil {
			return nil, err
		}
	}
	ca, err := ReadCACerts(o.CACerts)
	if err != nil {
		return nil, err
	}
	res := &Result{BinarySize: map[string]int64{}}
	// prebuilt, when set, is the binary to use instead of building pkg.
	build := func(b BinaryImage, pkg, tags, prebuilt string) (v1.ImageIndex, error) {
		var imgs []v1.Image
		for _, p := range o.Platforms {
			dir := filepath.Join(o.WorkDir, p.OS+"-"+p.Architecture)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			bin := prebuilt
			if bin == "" {
				bin = filepath.Join(dir, b.Name)
				if err := GoBuild(ctx, o.ModuleDir, pkg, tags, p, bin, o.BuildFlags...); err != nil {
					return nil, err
				}
			}
			if b.Name == "shiplock" {
				fi, err := os.Stat(bin)
				if err != nil {
					return nil, err
				}
				res.BinarySize[p.String()] = fi.Size()
			}
			img, err := b.Build(bin, p, o.Epoch)
			if err != nil {
				return nil, err
			}
			imgs = append(imgs, img)
		}
		return Index(imgs...)
	}
	release, err := build(ShiplockImage(ca), "./cmd/shiplock", PodTags, o.Binary)
	if err != nil {
		return nil, err
	}
	res.Images = append(res.Images, Named{o.Prefix + "shiplock:" + o.Tag, release})
	for _, m := range o.Migrations {
		files, err := MigrationFiles(m.Dir, m.MaxVersion)
		if err != nil {
			return nil, err
		}
		idx, err := WithLayer(release, files, o.Epoch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
		res.Images = append(res.Images, Named{o.Prefix + m.Name, idx})
	}
	for _, a := range o.Apps {
		idx, err := build(BinaryImage{Name: a.Binary}, a.Package, a.Tags, "")
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, Named{o.Prefix + a.Name, idx})
	}
	return res, nil
}

// Report writes one line per image and platform: name, digest, size (the
// manifest, config and compressed layers), and the binary's size.
func Report(w io.Writer, res *Result, took time.Duration) error {
	for _, n := range res.Images {
		d, err := n.Index.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\n", n.Name, d)
		im, err := n.Index.IndexManifest()
		if err != nil {
			return err
		}
		for _, m := range im.Manifests {
			img, err := n.Index.Image(m.Digest)
			if err != nil {
				return err
			}
			size, err := ImageSize(img)
			if err != nil {
				return err
			}
			line := fmt.Sprintf("  %s\t%s\t%d bytes", m.Platform, m.Digest, size)
			if b, ok := res.BinarySize[m.Platform.String()]; ok && strings.HasPrefix(n.Name[strings.LastIndex(n.Name, "/")+1:], "shiplock:") {
				line += fmt.Sprintf(" (binary %d bytes, %.3fx)", b, float64(size)/float64(b))
			}
			fmt.Fprintln(w, line)
		}
	}
	_, err := fmt.Fprintf(w, "built in %s\n", took.Round(100*time.Millisecond))
	return err
}

// ImageSize is what pulling img transfers: its manifest, config and
// compressed layers.
func ImageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// elfMachines are the ELF machines of the platforms a binary may be built for.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// CheckBinary fails unless file is a static ELF executable for p: the
// image is scratch, with no dynamic loader or C library to run anything
// else.
func CheckBinary(file string, p v1.Platform) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("binary %s: not a Linux executable: %w", file, err)
	}
	defer f.Close()
	want, ok := elfMachines[p.Architecture]
	if p.OS != "linux" || !ok {
		return fmt.Errorf("binary %s: platform %s is not supported", file, p)
	}
	if f.Machine != want {
		return fmt.Errorf("binary %s is built for %s, not %s (GOARCH=%s)", file, f.Machine, p, p.Architecture)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked: the image has no C library; build it with CGO_ENABLED=0", file)
		}
	}
	return nil
}

// ParsePlatforms reads a comma-separated list such as
// "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var ps []v1.Platform
	for _, f := range strings.Split(s, ",") {
		p, err := v1.ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		ps = append(ps, *p)
	}
	return ps, nil
}

// SourceDateEpoch is $SOURCE_DATE_EPOCH as a time; the zero time when
// unset (each tool's own default).
func SourceDateEpoch() (time.Time, error) {
	s, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	return time.Unix(sec, 0), nil
}

// Package release builds a shiplock release: static binaries for each
// platform, their archives (binary, LICENSE, man pages, shell completions),
// SHA256SUMS, one SBOM per binary made from the binary's own build
// information, a krew plugin manifest and the container images
// (internal/imagebuild). It is a build tool: the shiplock binary does not
// import it.
//
// The version is the one the Go toolchain stamps from the checkout (the
// tag at HEAD, else a pseudo-version, "+dirty" for a modified tree), read
// back from the built binary: no -ldflags -X that could disagree with it.
package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/shiplock/shiplock/internal/cli"
	"github.com/shiplock/shiplock/internal/imagebuild"
)

// Platforms are the release's binary platforms.
var Platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"},
	{OS: "darwin", Architecture: "amd64"}, {OS: "darwin", Architecture: "arm64"},
}

// Options say what [Build] builds.
type Options struct {
	// ModuleDir is shiplock's module root, a git checkout.
	ModuleDir string
	// Out receives the release files; it must not exist or be empty.
	Out string
	// Platforms; nil: [Platforms]. Images are built for the linux ones.
	Platforms []v1.Platform
	// Version, when set, must be the version Go stamps (HEAD tagged with
	// it and the tree clean): a guard against releasing the wrong commit.
	Version string
	// Images builds the container images (Out/images) too.
	Images bool
	// URL is the krew manifest's download address of each archive, a
	// template of {{.Version}} and {{.Archive}}; empty: [DefaultURL].
	URL string
	// Epoch dates archive entries and images; zero: the commit's time.
	Epoch time.Time
}

// DefaultURL is where the krew manifest says the archives are.
const DefaultURL = "https://github.com/shiplock/shiplock/releases/download/{{.Version}}/{{.Archive}}"

// Result lists what Build wrote, as paths relative to Options.Out.
type Result struct {
	Version  string
	Archives []Archive
	Files    []string // every file SHA256SUMS lists, sorted
	Images   *imagebuild.Result
}

// Archive is one platform's archive.
type Archive struct {
	Platform v1.Platform
	Name     string // shiplock_VERSION_OS_ARCH.tar.gz
	SHA256   string
	SBOM     string // the binary's CycloneDX SBOM
}

// Build builds the release described by o.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(o.Out); err != nil || len(ents) > 0 {
		return nil, fmt.Errorf("release: %s must be empty (%v)", o.Out, err)
	}
	work, err := os.MkdirTemp("", "shiplock-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	docs, err := Docs()
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, p := range o.Platforms {
		bin := filepath.Join(work, p.OS+"-"+p.Architecture, "shiplock")
		// Full binaries (kube commands, SQLite): the images hold the pod build.
		if err := imagebuild.GoBuild(ctx, o.ModuleDir, "./cmd/shiplock", "", p, bin, "-buildvcs=true"); err != nil {
			return nil, err
		}
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		if res.Version == "" {
			res.Version = bi.Main.Version
			if o.Version != "" && o.Version != res.Version {
				return nil, fmt.Errorf("release: the checkout builds version %s, not %s (tag HEAD %s and commit every change)", res.Version, o.Version, o.Version)
			}
			if !strings.HasPrefix(res.Version, "v") {
				return nil, fmt.Errorf("release: the binary has no module version (%q): release from a git clone (Go stamps none in a git worktree)", res.Version)
			}
			if o.Epoch.IsZero() {
				if o.Epoch, err = commitTime(bi); err != nil {
					return nil, err
				}
			}
		}
		a, err := writeArchive(o, res.Version, p, bin, docs)
		if err != nil {
			return nil, err
		}
		binData, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		sbom, err := SBOM(bi, sha256Hex(binData), o.Epoch)
		if err != nil {
			return nil, err
		}
		a.SBOM = strings.TrimSuffix(a.Name, ".tar.gz") + ".cdx.json"
		if err := os.WriteFile(filepath.Join(o.Out, a.SBOM), sbom, 0o644); err != nil {
			return nil, err
		}
		res.Archives = append(res.Archives, a)
		res.Files = append(res.Files, a.Name, a.SBOM)
	}

	krew, err := KrewManifest(res.Version, o.URL, res.Archives)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Out, "shiplock.krew.yaml"), krew, 0o644); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, "shiplock.krew.yaml")

	if o.Images {
		var linux []v1.Platform
		for _, p := range o.Platforms {
			if p.OS == "linux" {
				linux = append(linux, p)
			}
		}
		if res.Images, err = buildImages(ctx, o, res.Version, linux, work); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, "images.oci.tar")
	}

	sort.Strings(res.Files)
	var sums bytes.Buffer
	for _, f := range res.Files {
		b, err := os.ReadFile(filepath.Join(o.Out, f))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sha256Hex(b), f) // sha256sum -c reads this
	}
	return res, os.WriteFile(filepath.Join(o.Out, "SHA256SUMS"), sums.Bytes(), 0o644)
}

// ImageTag is the image tag of version: a tag has no "+".
func ImageTag(version string) string { return strings.ReplaceAll(version, "+", "-") }

func buildImages(ctx context.Context, o Options, version string, ps []v1.Platform, work string) (*imagebuild.Result, error) {
	if len(ps) == 0 {
		return nil, errors.New("release: images need a linux platform")
	}
	res, err := imagebuild.Build(ctx, imagebuild.Options{
		ModuleDir: o.ModuleDir, WorkDir: filepath.Join(work, "images"), Tag: ImageTag(version),
		Platforms: ps, Epoch: o.Epoch, BuildFlags: []string{"-buildvcs=true"},
	})
	if err != nil {
		return nil, err
	}
	layoutDir := filepath.Join(o.Out, "images")
	if err := imagebuild.WriteLayout(layoutDir, res.Images); err != nil {
		return nil, err
	}
	return res, imagebuild.WriteArchive(layoutDir, filepath.Join(o.Out, "images.oci.tar"), o.Epoch)
}

// commitTime is the vcs.time the toolchain stamped: archives and images
// of one commit are dated alike on every machine.
func commitTime(bi *buildinfo.BuildInfo) (time.Time, error) {
	for _, s := range bi.Settings {
		if s.Key == "vcs.time" {
			return time.Parse(time.RFC3339, s.Value)
		}
	}
	return time.Time{}, errors.New("release: the binary has no vcs.time: release from a git clone")
}

func writeArchive(o Options, version string, p v1.Platform, bin string, docs []imagebuild.File) (Archive, error) {
	a := Archive{Platform: p, Name: fmt.Sprintf("shiplock_%s_%s_%s.tar.gz", version, p.OS, p.Architecture)}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return a, err
	}
	files := []imagebuild.File{{Path: "/shiplock", Mode: 0o755, Data: binData}}
	for _, name := range []string{"LICENSE", "README.md", "CHANGELOG.md"} {
		b, err := os.ReadFile(filepath.Join(o.ModuleDir, name))
		if err != nil {
			return a, err
		}
		files = append(files, imagebuild.File{Path: "/" + name, Mode: 0o644, Data: b})
	}
	// The same deterministic tar.gz as an image layer.
	l, err := imagebuild.Layer(append(files, docs...), o.Epoch)
	if err != nil {
		return a, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return a, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return a, err
	}
	a.SHA256 = sha256Hex(b)
	return a, os.WriteFile(filepath.Join(o.Out, a.Name), b, 0o644)
}

// Docs are the man pages (/man/man1/*.1) and shell completions
// (/completions/shiplock.{bash,zsh,fish}) generated from the command tree.
func Docs() ([]imagebuild.File, error) {
	var files []imagebuild.File
	root := cli.Command()
	root.DisableAutoGenTag = true   // no date: the same tree gives the same pages
	root.InitDefaultCompletionCmd() // added when the binary runs; documented too
	var cmds []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && !c.IsAvailableCommand() {
			return
		}
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range cmds {
		var buf bytes.Buffer
		if err := doc.GenMan(c, &doc.GenManHeader{Title: strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-")), Section: "1", Source: "shiplock", Manual: "shiplock manual"}, &buf); err != nil {
			return nil, err
		}
		files = append(files, imagebuild.File{Path: "/man/man1/" + strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1", Mode: 0o644, Data: buf.Bytes()})
	}
	for _, sh := range []struct {
		ext string
		gen func(io.Writer) error
	}{
		{"bash", func(w io.Writer) error { return root.GenBashCompletionV2(w, true) }},
		{"zsh", root.GenZshCompletion},
		{"fish", func(w io.Writer) error { return root.GenFishCompletion(w, true) }},
	} {
		var buf bytes.Buffer
		if err := sh.gen(&buf); err != nil {
			return nil, err
		}
		files = append(files, imagebuild.File{Path: "/completions/shiplock." + sh.ext, Mode: 0o644, Data: buf.Bytes()})
	}
	return files, nil
}

// WriteDocs writes [Docs] under dir (dir/man/man1, dir/completions).
func WriteDocs(dir string) error {
	files, err := Docs()
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

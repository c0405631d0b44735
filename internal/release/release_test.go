package release_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/internal/imagebuild"
	"github.com/shiplock/shiplock/internal/release"
)

// TestDocs: a man page per command, with its flags, and completion
// scripts that name the commands.
func TestDocs(t *testing.T) {
	files, err := release.Docs()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Data)
	}
	up := got["/man/man1/shiplock-up.1"]
	for _, w := range []string{`.TH "SHIPLOCK-UP" "1"`, `\fB--to\fP`, `\fB--ddl-lock-timeout\fP`, `\fB--database-url\fP`} {
		if !strings.Contains(up, w) {
			t.Errorf("shiplock-up.1 lacks %q:\n%s", w, up)
		}
	}
	for _, page := range []string{"shiplock.1", "shiplock-kube-run.1", "shiplock-version.1", "shiplock-completion.1"} {
		if got["/man/man1/"+page] == "" {
			t.Errorf("no man page %s", page)
		}
	}
	for sh, w := range map[string]string{"bash": "__start_shiplock", "zsh": "#compdef shiplock", "fish": "complete -c shiplock"} {
		if !strings.Contains(got["/completions/shiplock."+sh], w) {
			t.Errorf("completions/shiplock.%s lacks %q", sh, w)
		}
	}
}

// TestBuild releases a tagged clone of this checkout for linux/amd64
// (binary archive, SBOM, krew manifest, images, SHA256SUMS) and checks
// every output.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release: not with -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Go stamps version and commit from a clone (not from a git worktree,
	// and not an uncommitted change): release a clone of HEAD, tagged.
	const tag = "v0.0.0-test.1"
	src := filepath.Join(t.TempDir(), "src")
	head := git(t, root, "rev-parse", "HEAD")
	git(t, root, "clone", "--quiet", "--no-checkout", root, src)
	git(t, src, "checkout", "--quiet", head)
	git(t, src, "tag", tag)

	out := filepath.Join(t.TempDir(), "dist")
	start := time.Now()
	res, err := release.Build(context.Background(), release.Options{
		ModuleDir: src, Out: out, Version: tag, Images: true,
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release for linux/amd64 with images: %s", time.Since(start).Round(100*time.Millisecond))
	if res.Version != tag {
		t.Errorf("version %q, want the tag %q", res.Version, tag)
	}

	// SHA256SUMS lists every file with its hash.
	sums := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, out, "SHA256SUMS")))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		sums[name] = sum
	}
	archive := "shiplock_" + tag + "_linux_amd64.tar.gz"
	sbomName := "shiplock_" + tag + "_linux_amd64.cdx.json"
	var want []string
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if !e.IsDir() && e.Name() != "SHA256SUMS" {
			want = append(want, e.Name())
		}
	}
	if got := keys(sums); strings.Join(got, " ") != strings.Join(want, " ") || len(got) != 4 {
		t.Errorf("SHA256SUMS lists %v; the directory holds %v (want the archive, SBOM, krew manifest and images.oci.tar)", got, want)
	}
	for name, sum := range sums {
		if h := sha256Hex([]byte(readFile(t, out, name))); h != sum {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, h, sum)
		}
	}

	// The archive: the binary, LICENSE, man pages, completions.
	files := untar(t, filepath.Join(out, archive))
	for _, f := range []string{"shiplock", "LICENSE", "README.md", "CHANGELOG.md", "man/man1/shiplock-up.1", "completions/shiplock.bash", "completions/shiplock.zsh", "completions/shiplock.fish"} {
		if len(files[f]) == 0 {
			t.Errorf("%s has no %s", archive, f)
		}
	}
	bin := filepath.Join(t.TempDir(), "shiplock")
	if err := os.WriteFile(bin, files["shiplock"], 0o755); err != nil {
		t.Fatal(err)
	}
	version, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(version), "shiplock "+tag+"\ncommit:  "+head+"\n") || !strings.Contains(string(version), "CGO_ENABLED=0") {
		t.Errorf("the released binary's --version:\n%s\nwant shiplock %s, commit %s, CGO_ENABLED=0", version, tag, head)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	// The SBOM: the binary and its modules, versions as go.mod requires.
	var bom struct {
		BOMFormat, SpecVersion string
		Metadata               struct{ Component component }
		Components             []component
	}
	if err := json.Unmarshal([]byte(readFile(t, out, sbomName)), &bom); err != nil {
		t.Fatal(err)
	}
	mc := bom.Metadata.Component
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" || mc.Name != "github.com/shiplock/shiplock" || mc.Version != tag ||
		len(mc.Hashes) != 1 || mc.Hashes[0].Content != sha256Hex(files["shiplock"]) {
		t.Errorf("SBOM metadata: %s %s %+v", bom.BOMFormat, bom.SpecVersion, mc)
	}
	gomod, err := modfile.Parse("go.mod", []byte(readFile(t, src, "go.mod")), nil)
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]string{}
	for _, r := range gomod.Require {
		required[r.Mod.Path] = r.Mod.Version
	}
	listed := map[string]component{}
	for _, c := range bom.Components {
		listed[c.Name] = c
	}
	for _, m := range []string{"github.com/jackc/pgx/v5", "github.com/spf13/cobra", "k8s.io/client-go", "modernc.org/sqlite"} {
		c := listed[m]
		if c.Version == "" || c.Version != required[m] || c.PURL != "pkg:golang/"+m+"@"+required[m] || !strings.HasPrefix(c.prop("go:sum"), "h1:") {
			t.Errorf("SBOM component %s: %+v, want version %s with its go.sum hash", m, c, required[m])
		}
	}
	if len(bom.Components) != len(bi.Deps) {
		t.Errorf("SBOM lists %d modules, the binary has %d", len(bom.Components), len(bi.Deps))
	}

	// The krew manifest: valid, with the archive's address and hash.
	var krew release.KrewPlugin
	if err := sigsyaml.UnmarshalStrict([]byte(readFile(t, out, "shiplock.krew.yaml")), &krew); err != nil {
		t.Fatalf("shiplock.krew.yaml: %v", err)
	}
	if krew.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || krew.Kind != "Plugin" || krew.Metadata.Name != "shiplock" ||
		krew.Spec.Version != tag || !semver.IsValid(krew.Spec.Version) || krew.Spec.ShortDescription == "" || len(krew.Spec.Platforms) != 1 {
		t.Fatalf("krew manifest: %+v", krew)
	}
	p := krew.Spec.Platforms[0]
	if p.Selector.MatchLabels["os"] != "linux" || p.Selector.MatchLabels["arch"] != "amd64" ||
		p.SHA256 != sha256Hex([]byte(readFile(t, out, archive))) || p.URI != "https://github.com/shiplock/shiplock/releases/download/"+tag+"/"+archive ||
		len(files[p.Bin]) == 0 {
		t.Errorf("krew platform: %+v", p)
	}
	for _, f := range p.Files {
		if len(files[f.From]) == 0 {
			t.Errorf("krew copies %s, not in the archive", f.From)
		}
	}

	// The release image, tagged with the version, runs the same build.
	idx, err := imagebuild.LayoutIndex(filepath.Join(out, "images"), "shiplock:"+release.ImageTag(tag))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.String() != "linux/amd64" {
		t.Errorf("release image manifests: %+v", im.Manifests)
	}

	// A version the checkout does not build is refused.
	_, err = release.Build(context.Background(), release.Options{
		ModuleDir: src, Out: filepath.Join(t.TempDir(), "dist"), Version: "v1.0.0",
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}},
	})
	if err == nil || !strings.Contains(err.Error(), "not v1.0.0") {
		t.Errorf("release -version v1.0.0 of a checkout tagged %s: %v", tag, err)
	}
}

type component struct {
	Type, Name, Version, PURL string
	Hashes                    []struct{ Alg, Content string }
	Properties                []struct{ Name, Value string }
}

func (c component) prop(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func untar(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, tr); err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b.Bytes()
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

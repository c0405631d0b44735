package main

import (
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

const (
	modulePath  = "github.com/shiplock/shiplock"
	testVersion = "v0.0.0-test"
)

// TestGoInstall runs the README's install command against a file:// module
// proxy serving this checkout as v0.0.0-test (its dependencies come from
// the usual proxy), and checks that the binary is static and knows its
// version.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("go install builds shiplock from a module proxy: not with -short")
	}
	start := time.Now()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\nCGO_ENABLED=0 go install "+modulePath+"/cmd/shiplock@") {
		t.Errorf("README.md does not give the command this test runs")
	}
	proxy := t.TempDir()
	writeProxy(t, proxy, root)

	goenv := func(key string) string {
		out, err := exec.Command("go", "env", key).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	// The module cache keeps a version for good: drop this test's fake
	// one before and after, so each run installs the checkout as it is.
	modcache := goenv("GOMODCACHE")
	clean := func() {
		for _, p := range []string{
			filepath.Join(modcache, "github.com/shiplock/shiplock@"+testVersion),
			filepath.Join(modcache, "cache/download/github.com/shiplock/shiplock/@v"),
		} {
			_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Chmod(path, 0o755)
				}
				return nil
			})
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	clean()
	t.Cleanup(clean)

	gobin := t.TempDir()
	cmd := exec.Command("go", "install", modulePath+"/cmd/shiplock@"+testVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0",
		"GOBIN="+gobin,
		"GOPROXY=file://"+filepath.ToSlash(proxy)+","+goenv("GOPROXY"),
		"GONOSUMDB="+modulePath, // the checksum database does not know v0.0.0-test
		"GOFLAGS=-modcacherw",
		// cmd/go indexes a module version's files once for good (the
		// module index in GOCACHE): this fake version changes.
		"GODEBUG=goindex=0",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	t.Logf("go install from the file proxy: %s", time.Since(start).Round(100*time.Millisecond))

	bin := filepath.Join(gobin, "shiplock")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an interpreter (PT_INTERP): linked dynamically", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}

	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("shiplock --version: %v", err)
	}
	if !strings.HasPrefix(string(out), "shiplock "+testVersion+"\n") || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Errorf("shiplock --version:\n%s", out)
	}
}

// writeProxy writes the GOPROXY protocol's files for module root at
// testVersion under dir: @v/list, .info, .mod and .zip.
func writeProxy(t *testing.T, dir, root string) {
	t.Helper()
	v := filepath.Join(dir, filepath.FromSlash(modulePath), "@v")
	if err := os.MkdirAll(v, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(map[string]string{"Version": testVersion, "Time": time.Now().UTC().Format(time.RFC3339)})
	for name, data := range map[string][]byte{"list": []byte(testVersion + "\n"), testVersion + ".info": info, testVersion + ".mod": gomod} {
		if err := os.WriteFile(filepath.Join(v, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zf, err := os.Create(filepath.Join(v, testVersion+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	// The module's files as "go mod" would zip them: nested modules
	// (test/kube/nodeagent), VCS directories and vendor trees left out.
	if err := modzip.CreateFromDir(zf, module.Version{Path: modulePath, Version: testVersion}, root); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binaries are the programs the bench runs.
type binaries struct {
	shiplock string
	floor    string
	goose    string
	migrate  string
	psql     string
}

// moduleRoot is the directory of the main module (where go.mod is).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the bench inside the shiplock module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// goCmd runs the go tool in dir with extra environment, returning its
// combined output in the error.
func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

func (b *bench) build(ctx context.Context, modRoot string) error {
	buildDir := filepath.Join(b.cfg.cache, "build")
	if err := os.MkdirAll(buildDir, 0o755); err != nil {
		return err
	}
	static := []string{"CGO_ENABLED=0"}

	// shiplock, from a git revision (reproducible, and immune to edits in
	// progress) or from the working tree.
	bin := &b.res.Binary
	switch {
	case b.cfg.shiplockBin != "":
		b.bins.shiplock = b.cfg.shiplockBin
		bin.Source = "prebuilt " + b.cfg.shiplockBin
	default:
		src := modRoot
		bin.Source = "working tree " + modRoot
		if b.cfg.rev != "worktree" {
			var err error
			if src, bin.Commit, err = b.export(ctx, modRoot, b.cfg.rev); err != nil {
				return err
			}
			bin.Source = "git " + b.cfg.rev + " " + bin.Commit
		}
		// The measured binary is built as the Dockerfile builds the one
		// pods run; the full binary (plain go build) only for its size.
		b.bins.shiplock = filepath.Join(buildDir, "shiplock")
		args := []string{"build", "-trimpath", "-tags", b.cfg.tags, "-ldflags=" + b.cfg.ldflags, "-o", b.bins.shiplock, "./cmd/shiplock"}
		bin.Build = fmt.Sprintf("CGO_ENABLED=0 go build -trimpath -tags '%s' -ldflags='%s'", b.cfg.tags, b.cfg.ldflags)
		b.logf("building shiplock (%s): %s", bin.Source, bin.Build)
		if err := goCmd(ctx, src, static, args...); err != nil {
			return err
		}
		full := filepath.Join(buildDir, "shiplock-full")
		if err := goCmd(ctx, src, static, "build", "-o", full, "./cmd/shiplock"); err != nil {
			return err
		}
		if fi, err := os.Stat(full); err == nil {
			bin.FullSizeBytes = fi.Size()
		}
		bin.FullStatic, _ = isStatic(full)
	}
	fi, err := os.Stat(b.bins.shiplock)
	if err != nil {
		return err
	}
	bin.SizeBytes = fi.Size()
	bin.Static, bin.StaticDetail = isStatic(b.bins.shiplock)

	b.bins.floor = filepath.Join(buildDir, "pgx-floor")
	if err := goCmd(ctx, modRoot, static, "build", "-o", b.bins.floor, "./bench/floor"); err != nil {
		return err
	}
	if b.bins.psql, err = exec.LookPath("psql"); err != nil {
		return fmt.Errorf("psql not found: install postgresql-client")
	}

	if b.cfg.skipPeers {
		return nil
	}
	if b.bins.goose, err = b.peer(ctx, "goose", "github.com/pressly/goose/v3/cmd/goose", gooseVersion, gooseTags); err != nil {
		return err
	}
	b.bins.migrate, err = b.peer(ctx, "migrate", "github.com/golang-migrate/migrate/v4/cmd/migrate", migrateVersion, migrateTags)
	return err
}

// export writes the tree of rev into the cache (once per commit) and
// returns its directory and the full commit hash.
func (b *bench) export(ctx context.Context, modRoot, rev string) (string, string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", modRoot, "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("git rev-parse %s: %w", rev, err)
	}
	commit := strings.TrimSpace(string(out))
	dir := filepath.Join(b.cfg.cache, "src", commit)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir, commit, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", err
	}
	tarball := tmp + ".tar"
	defer os.Remove(tarball)
	if out, err := exec.CommandContext(ctx, "git", "-C", modRoot, "archive", "--format=tar", "-o", tarball, commit).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git archive %s: %w\n%s", commit, err, out)
	}
	if out, err := exec.CommandContext(ctx, "tar", "-xf", tarball, "-C", tmp).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("untar %s: %w\n%s", commit, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", err
	}
	return dir, commit, nil
}

// peer returns the cached binary of a peer CLI, building it with go install
// on first use.
func (b *bench) peer(ctx context.Context, name, pkg, version, tags string) (string, error) {
	dir := filepath.Join(b.cfg.cache, "bin", name+"-"+version)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	b.logf("building %s %s (cached in %s)", name, version, dir)
	env := []string{"CGO_ENABLED=0", "GOBIN=" + dir, "GOFLAGS=-buildvcs=false"}
	if err := goCmd(ctx, b.cfg.cache, env, "install", "-tags", tags, pkg+"@"+version); err != nil {
		return "", err
	}
	return path, nil
}

// isStatic reports whether an ELF binary needs no dynamic loader.
func isStatic(path string) (bool, string) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err.Error()
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, "has an ELF interpreter (dynamically linked)"
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return false, "needs " + strings.Join(libs, ", ")
	}
	return true, "no ELF interpreter, no shared libraries"
}

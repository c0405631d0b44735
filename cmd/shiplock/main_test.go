package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// binary builds shiplock from this checkout once, as a user's "go build"
// would (VCS stamping on), and returns its directory, which also holds the
// symlink kubectl-shiplock, kubectl's name for the plugin.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "shiplock-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", filepath.Join(builtDir, "shiplock"), ".")
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		buildErr = os.Symlink("shiplock", filepath.Join(builtDir, "kubectl-shiplock"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// shiplock runs the program name of dir with args in an empty directory
// and an environment without any database setting, and returns its exit
// code and output.
func shiplock(t *testing.T, dir, name string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, name), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + cmd.Dir}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestVersion: --version and "version --client" print the build
// information the binary carries, with no migrations directory and no
// database; "version" alone stays goose's (the database's version).
func TestVersion(t *testing.T) {
	dir := binary(t)
	bi, err := buildinfo.ReadFile(filepath.Join(dir, "shiplock"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	want := []string{
		"shiplock " + bi.Main.Version + "\n",
		"go:      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
	}
	// Go stamps the commit in a clone, not in a git worktree (its .git is
	// a file): the release test checks the commit line on a clone.
	if rev := settings["vcs.revision"]; rev != "" {
		want = append(want, "commit:  "+rev)
		if settings["vcs.modified"] == "true" {
			want = append(want, rev+" (modified)\n")
		}
	}
	var first string
	for _, args := range [][]string{{"--version"}, {"version", "--client"}, {"-version"}} { // -version: goose's spelling
		code, out, stderr := shiplock(t, dir, "shiplock", args...)
		if code != 0 {
			t.Fatalf("shiplock %v: exit %d\n%s", args, code, stderr)
		}
		if !strings.HasPrefix(out, "shiplock v") && !strings.HasPrefix(out, "shiplock (devel)") {
			t.Errorf("shiplock %v: first line %q", args, strings.SplitN(out, "\n", 2)[0])
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("shiplock %v: output lacks %q:\n%s", args, w, out)
			}
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("shiplock %v differs from --version:\n%s\n%s", args, out, first)
		}
	}
	_, help, _ := shiplock(t, dir, "shiplock", "version", "--help")
	for _, w := range []string{"database's current schema version", "goose version", "shiplock --version"} {
		if !strings.Contains(help, w) {
			t.Errorf("version --help lacks %q:\n%s", w, help)
		}
	}
	// Without --client it reads the database, and there is none.
	if code, out, _ := shiplock(t, dir, "shiplock", "version"); code == 0 {
		t.Errorf("shiplock version without a database: exit 0, %q", out)
	}
}

// TestKubectlPlugin: called as kubectl-shiplock (kubectl runs
// "kubectl shiplock ..." so), the program is the same and its help says
// "kubectl shiplock".
func TestKubectlPlugin(t *testing.T) {
	dir := binary(t)
	code, help, stderr := shiplock(t, dir, "kubectl-shiplock", "--help")
	if code != 0 || !strings.Contains(help, "kubectl shiplock [command]") || strings.Contains(help, "\n  shiplock [command]") {
		t.Errorf("kubectl-shiplock --help: exit %d\n%s%s", code, help, stderr)
	}
	_, help, _ = shiplock(t, dir, "kubectl-shiplock", "kube", "run", "--help")
	if !strings.Contains(help, "kubectl shiplock kube run [flags] -- COMMAND") || !strings.Contains(help, "\n  kubectl shiplock kube run ") {
		t.Errorf("kubectl-shiplock kube run --help: usage and examples should say kubectl shiplock:\n%s", help)
	}
	_, help, _ = shiplock(t, dir, "shiplock", "kube", "run", "--help")
	if strings.Contains(help, "kubectl shiplock") {
		t.Errorf("shiplock kube run --help speaks of kubectl shiplock:\n%s", help)
	}
	job := []string{"kube", "job", "--image", "example.com/m", "--tag", "v1", "--db-host", "db", "--db-name", "app", "--secret", "s", "--", "up"}
	c1, plugin, e1 := shiplock(t, dir, "kubectl-shiplock", job...)
	c2, direct, e2 := shiplock(t, dir, "shiplock", job...)
	if c1 != 0 || c2 != 0 || plugin != direct || !strings.Contains(plugin, "kind: Job") {
		t.Errorf("kube job as kubectl-shiplock (exit %d) and shiplock (exit %d) differ:\n%s%s\n---\n%s%s", c1, c2, plugin, e1, direct, e2)
	}
}

// TestCompletion: "shiplock completion SHELL" prints a script, and bash
// loading it completes shiplock's commands.
func TestCompletion(t *testing.T) {
	dir := binary(t)
	for shell, want := range map[string]string{"bash": "__start_shiplock", "zsh": "#compdef shiplock", "fish": "complete -c shiplock"} {
		code, out, stderr := shiplock(t, dir, "shiplock", "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, lacks %q\n%s", shell, code, want, stderr)
		}
		if shell == "bash" {
			script := filepath.Join(t.TempDir(), "shiplock.bash")
			if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			// What bash does on "shiplock <TAB>".
			// The script needs the bash-completion package, as in a shell.
			cmd := exec.Command("bash", "-c", `source /usr/share/bash-completion/bash_completion && source "$1"; COMP_LINE="shiplock "; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(shiplock ""); COMP_CWORD=1; __start_shiplock; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
			cmd.Env = []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			got, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash completion: %v\n%s", err, got)
			}
			words := strings.Fields(string(got))
			for _, w := range []string{"up", "down", "status", "kube", "completion"} {
				if !contains(words, w) {
					t.Errorf("bash completes %q to %q, without %s", "shiplock ", words, w)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestREADMEQuickstart runs the README's first setup command (on a file
// of its own) and compares what it prints with the README's sample: the
// log's messages in order, the outcome line, and the second run's.
func TestREADMEQuickstart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const command = "go run ./cmd/shiplock up --database-url /tmp/shiplock-quickstart.db --dir examples/quickstart/migrations"
	text := string(readme)
	i := strings.Index(text, command)
	if i < 0 {
		t.Fatalf("the README's setup no longer runs %q", command)
	}
	// The sample is the first code block after the command's.
	rest := text[i:]
	rest = rest[strings.Index(rest, "```\n\nThe first")+3:]
	start := strings.Index(rest, "```\n") + 4
	sample := rest[start : start+strings.Index(rest[start:], "```")]
	msgs := func(log string) []string {
		var out []string
		for _, f := range strings.Fields(log) {
			if m, ok := strings.CutPrefix(f, "msg="); ok {
				out = append(out, m)
			}
		}
		return out
	}
	lines := strings.Split(strings.TrimSpace(sample), "\n")
	wantLog, wantOut := strings.Join(lines[:len(lines)-1], "\n"), lines[len(lines)-1]

	dir, _ := filepath.Abs("../../examples/quickstart/migrations")
	db := filepath.Join(t.TempDir(), "q.db")
	code, out, errOut := shiplock(t, binary(t), "shiplock", "up", "--database-url", db, "--dir", dir, "--log-format", "text")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// The same messages; their order depends on when a commit is made
	// durable (every 200 ms at most), so it is not compared.
	got, want := msgs(errOut), msgs(wantLog)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("log messages %q, the README shows %q\n%s", got, want, errOut)
	}
	prefix := wantOut[:strings.LastIndex(wantOut, " in ")+4]
	if !strings.HasPrefix(out, prefix) {
		t.Errorf("outcome %q, the README shows %q", out, wantOut)
	}
	if _, out, _ = shiplock(t, binary(t), "shiplock", "up", "--database-url", db, "--dir", dir); out != "nothing to do, at version 3\n" {
		t.Errorf("second run: %q, the README says \"nothing to do, at version 3\"", out)
	}
}

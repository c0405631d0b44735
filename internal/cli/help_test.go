package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/exitcode"
)

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)

// section returns the lines of help under heading, up to the next blank line.
func section(help, heading string) string {
	i := strings.Index(help, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	s := help[i+len(heading)+2:]
	if j := strings.Index(s, "\n\n"); j >= 0 {
		s = s[:j]
	}
	return s
}

// TestHelpListsOnlyUsedFlags walks every command: its help shows the
// global flags globalFlagUsers says it reads and no other, examples, and
// the environment variables behind the flags it shows.
func TestHelpListsOnlyUsedFlags(t *testing.T) {
	root := newRoot(&globals{})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if !c.HasParent() || c.Hidden {
			return
		}
		var out bytes.Buffer
		c.SetOut(&out)
		if err := c.Help(); err != nil {
			t.Fatal(err)
		}
		help := out.String()
		shown := map[string]bool{}
		for _, m := range helpFlag.FindAllStringSubmatch(section(help, "Global Flags:"), -1) {
			shown[m[1]] = true
		}
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			if _, ok := globalFlagUsers[f.Name]; !ok {
				t.Errorf("global flag --%s is not in globalFlagUsers: list the commands that read it", f.Name)
				return
			}
			if want := usesGlobal(c, f.Name); shown[f.Name] != want {
				t.Errorf("%s --help: shows --%s = %v, want %v (globalFlagUsers)", c.CommandPath(), f.Name, shown[f.Name], want)
			}
		})
		if c.Runnable() && !strings.Contains(section(help, "Examples:"), "  shiplock ") {
			t.Errorf("%s --help has no examples", c.CommandPath())
		}
		env := section(help, "Environment:")
		if shown["dir"] && !strings.Contains(env, "SHIPLOCK_DIR") {
			t.Errorf("%s --help shows --dir but not SHIPLOCK_DIR", c.CommandPath())
		}
		kube := strings.HasPrefix(c.CommandPath(), "shiplock kube")
		if shown["database-url"] && strings.Contains(env, "PGHOST") == kube {
			t.Errorf("%s --help: the PG* variables are listed = %v; want them exactly where the command reads this environment's database", c.CommandPath(), !kube)
		}
	}
	walk(root)
	if t.Failed() {
		return
	}
	// The table against the code: every command said to read --dir fails
	// on a missing one (exit 3); one said not to does not look.
	db := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	missing := filepath.Join(t.TempDir(), "nonexistent")
	for _, path := range globalFlagUsers["dir"] {
		args := append(strings.Fields(path), "--dir", missing, "--database-url", db)
		switch path {
		case "create":
			continue // makes the directory
		case "repair":
			args = append(args, "--resume")
		}
		if code, _, stderr := runCLI(t, nil, args...); code != int(exitcode.BadFile) || !strings.Contains(stderr, missing) {
			t.Errorf("%s --dir MISSING: exit %d, %q; want exit 3 naming it (globalFlagUsers says it reads --dir)", path, code, stderr)
		}
	}
	if code, _, stderr := runCLI(t, nil, "wait", "--dir", missing, "--database-url", db); code != 0 {
		t.Errorf("wait --dir MISSING: exit %d, %s; wait does not read --dir", code, stderr)
	}
}

// TestMainConcurrently: Main runs on many goroutines at once (a program's
// runners through shiplockmain.Run) without writing cobra's global state
// twice (the help template's functions: a concurrent map write is fatal).
func TestMainConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, out := run(context.Background(), "status", "--help"); code != 0 || !strings.Contains(out, "Environment:") {
				t.Errorf("status --help: exit %d\n%s", code, out)
			}
		}()
	}
	wg.Wait()
}

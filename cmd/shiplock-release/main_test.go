package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsOnly: -docs DIR writes the man pages and completion scripts the
// README tells to install, and nothing else.
func TestDocsOnly(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"-docs", dir}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"man/man1/shiplock-up.1":       `\fB--ddl-lock-timeout\fP`,
		"man/man1/shiplock-kube-run.1": "kube run",
		"completions/shiplock.bash":    "__start_shiplock",
		"completions/shiplock.zsh":     "#compdef shiplock",
		"completions/shiplock.fish":    "complete -c shiplock",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v, lacks %q", file, err, want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("-docs wrote %v, want man and completions", ents)
	}
}

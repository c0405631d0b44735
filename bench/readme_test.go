package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEFiguresFromResults: the README's Performance section shows the
// table of a result file the repository keeps (bench/results, written by
// `bench/run.sh --keep bench/results`), unchanged, and no other table; its
// readiness figure is the one of a kept bench/wait result file.
func TestREADMEFiguresFromResults(t *testing.T) {
	section := readmeSection(t, "Performance")
	read := func(re string) (string, string) {
		t.Helper()
		path := regexp.MustCompile(re).FindString(section)
		if path == "" {
			t.Fatalf("the Performance section names no result file matching %s", re)
		}
		data, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
		if err != nil {
			t.Fatalf("the README quotes %s: %v", path, err)
		}
		return path, string(data)
	}

	path, res := read("bench/results/[0-9-]+\\.md")
	checkTable(t, section, path, res)

	m := regexp.MustCompile(`finishes a median of (-?[0-9.]+) ms after`).FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the Performance section gives no readiness median (\"finishes a median of N ms after\")")
	}
	wpath, wres := read("bench/results/wait-[0-9-]+\\.md")
	if !strings.Contains(wres, "| shiplock up | "+m[1]+" |") {
		t.Errorf("README.md's readiness median %s ms is not shiplock up's median in %s:\n%s", m[1], wpath, wres)
	}
}

// readmeSection returns the README's "## title" section.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("README.md has no %q section", "## "+title)
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}

// checkTable fails unless the section's table lines are exactly those of
// the result file's README table.
func checkTable(t *testing.T, section, path, res string) {
	t.Helper()
	b, e := strings.Index(res, readmeTableBegin), strings.Index(res, readmeTableEnd)
	if b < 0 || e < b {
		t.Fatalf("%s has no README table between %q and %q", path, readmeTableBegin, readmeTableEnd)
	}
	want := tableLines(res[b+len(readmeTableBegin) : e])
	if got := tableLines(section); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md's table differs from %s's:\nREADME:\n%s\n%s:\n%s", path, strings.Join(got, "\n"), path, strings.Join(want, "\n"))
	}
}

func tableLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "|") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

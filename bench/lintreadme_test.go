package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMELintFiguresFromResults: the README's "Migration safety"
// section shows the table of the bench/lint result file it names,
// unchanged.
func TestREADMELintFiguresFromResults(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Migration safety\n")
	if start < 0 {
		t.Fatal("README.md has no \"## Migration safety\" section")
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	path := regexp.MustCompile(`bench/results/lint-[0-9-]+\.md`).FindString(section)
	if path == "" {
		t.Fatal("the Migration safety section names no bench/results/lint-*.md file")
	}
	data, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	res := string(data)
	b, e := strings.Index(res, readmeTableBegin), strings.Index(res, readmeTableEnd)
	if b < 0 || e < b {
		t.Fatalf("%s has no README table", path)
	}
	want := tableLines(res[b+len(readmeTableBegin) : e])
	if got := tableLines(section); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md's Migration safety table differs from %s's:\nREADME:\n%s\n%s:\n%s", path, strings.Join(got, "\n"), path, strings.Join(want, "\n"))
	}
}

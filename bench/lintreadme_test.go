package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestREADMELintFiguresFromResults: the README's "Migration safety"
// section shows the table of the bench/lint result file it names,
// unchanged.
func TestREADMELintFiguresFromResults(t *testing.T) {
	section := readmeSection(t, "Migration safety")
	path := regexp.MustCompile(`bench/results/lint-[0-9-]+\.md`).FindString(section)
	if path == "" {
		t.Fatal("the Migration safety section names no bench/results/lint-*.md file")
	}
	data, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, section, path, string(data))
}

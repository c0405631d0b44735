package goosemigrations_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEMain: the main the README gives teams is the one
// TestBuiltBinary builds, but for the migrations package's path.
func TestREADMEMain(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "## Go migrations\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Go migrations" section`)
	}
	section = section[start:]
	open := strings.Index(section, "```go\n")
	if open < 0 {
		t.Fatal(`README.md's "Go migrations" has no Go block`)
	}
	block := section[open+len("```go\n"):]
	block = block[:strings.Index(block, "```")]

	main, err := os.ReadFile("testdata/myshiplock/main.go")
	if err != nil {
		t.Fatal(err)
	}
	want := string(main)
	want = want[strings.Index(want, "package main"):] // without the doc comment
	want = strings.Replace(want, `"github.com/shiplock/shiplock/goosemigrations/testdata/gomig"`, `"example.com/app/migrations"`, 1)
	if block != want {
		t.Fatalf("README's main differs from testdata/myshiplock/main.go:\n--- README\n%s\n--- want\n%s", block, want)
	}
	if n := strings.Count(strings.TrimSpace(block), "\n") + 1; n > 15 {
		t.Errorf("README's main is %d lines", n)
	}
}

package shiplock_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shiplock/shiplock/internal/cli"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the output blocks of docs/from-goose-nc.md from what shiplock prints")

// docBlock is a fenced code block of a Markdown file.
type docBlock struct {
	info       string // the fence's info string: "yaml file=job.yaml"
	body       string
	start, end int // byte offsets of body in the file
}

var fenceRE = regexp.MustCompile("(?m)^```([^\n]*)\n")

func docBlocks(doc string) []docBlock {
	var out []docBlock
	for pos := 0; ; {
		m := fenceRE.FindStringSubmatchIndex(doc[pos:])
		if m == nil {
			return out
		}
		start := pos + m[1]
		end := strings.Index(doc[start:], "```")
		if end < 0 {
			return out
		}
		out = append(out, docBlock{info: doc[pos+m[2] : pos+m[3]], body: doc[start : start+end], start: start, end: start + end})
		pos = start + end + 3
	}
}

// shellWords splits one shell command, with backslash-newline
// continuations and single or double quotes, as sh reads it (no
// expansions: the doc's placeholders are quoted).
func shellWords(t *testing.T, s string) []string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// TestFromGooseNC keeps docs/from-goose-nc.md true: its "yaml file=NAME"
// blocks are the seed's manifests, each "sh" block is one shiplock
// command run on them, and the "yaml" block after it is what that command
// prints, byte for byte. -update-docs rewrites those output blocks.
func TestFromGooseNC(t *testing.T) {
	const path = "docs/from-goose-nc.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	blocks := docBlocks(doc)
	dir := t.TempDir()
	for _, bl := range blocks {
		if name, ok := strings.CutPrefix(bl.info, "yaml file="); ok {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(bl.body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Chdir(dir)
	var updated strings.Builder
	last, commands := 0, 0
	for i, bl := range blocks {
		if bl.info != "sh" {
			continue
		}
		args := shellWords(t, bl.body)
		if len(args) == 0 || args[0] != "shiplock" {
			continue
		}
		if i+1 >= len(blocks) || blocks[i+1].info != "yaml" {
			t.Fatalf("%s: the command %q has no yaml block after it", path, bl.body)
		}
		commands++
		var out, errOut bytes.Buffer
		code := cli.Main(context.Background(), args[1:], cli.Streams{Out: &out, Err: &errOut, LookupEnv: func(string) (string, bool) { return "", false }})
		if code != 0 {
			t.Fatalf("%s: %s: exit %d\n%s", path, bl.body, code, errOut.String())
		}
		want := blocks[i+1]
		if *updateDocs {
			updated.WriteString(doc[last:want.start])
			updated.WriteString(out.String())
			last = want.end
			continue
		}
		if want.body != out.String() {
			t.Errorf("%s: the output shown for\n%s\ndiffers from what shiplock prints (go test -run TestFromGooseNC -update-docs):\n%s", path, bl.body, out.String())
		}
	}
	if commands < 3 {
		t.Fatalf("%s: %d shiplock commands, want the Job, the Deployment and the Job injected", path, commands)
	}
	if *updateDocs {
		updated.WriteString(doc[last:])
		if err := os.WriteFile(abs, []byte(updated.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

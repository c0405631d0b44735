package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The images cannot be built here (no Docker engine); these tests check the
// pieces that matter in the Dockerfiles themselves.

type instruction struct{ cmd, args string }

// finalStage parses a Dockerfile and returns the instructions of its last
// stage (line continuations joined, comments dropped).
func finalStage(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			out = nil
		}
		out = append(out, instruction{cmd, strings.TrimSpace(args)})
	}
	return out
}

func find(ins []instruction, cmd string) []string {
	var out []string
	for _, i := range ins {
		if i.cmd == cmd {
			out = append(out, i.args)
		}
	}
	return out
}

func checkRuntime(t *testing.T, path, binary string) []instruction {
	t.Helper()
	st := finalStage(t, path)
	if users := find(st, "USER"); len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("%s: the final stage must run as a non-root user, has USER %v", path, users)
	}
	eps := find(st, "ENTRYPOINT")
	if len(eps) == 0 {
		t.Fatalf("%s: no ENTRYPOINT", path)
	}
	var argv []string
	if err := json.Unmarshal([]byte(eps[len(eps)-1]), &argv); err != nil || len(argv) == 0 || argv[0] != binary {
		t.Errorf("%s: ENTRYPOINT %s must be exec form running %s (no shell in the image)", path, eps[len(eps)-1], binary)
	}
	for _, run := range find(st, "RUN") {
		t.Errorf("%s: the final stage runs %q: it needs a shell", path, run)
	}
	return st
}

func TestShiplockImage(t *testing.T) {
	st := checkRuntime(t, "../../Dockerfile", "/usr/local/bin/shiplock")
	if froms := find(st, "FROM"); len(froms) != 1 || froms[0] != "scratch" {
		t.Errorf("release image base = %v, want scratch (static binary)", froms)
	}
	if envs := find(st, "ENV"); len(envs) != 2 || envs[1] != "SHIPLOCK_DIR=/migrations" {
		t.Errorf("release image ENV = %v, want PATH and SHIPLOCK_DIR=/migrations", envs)
	}
}

func TestAccountsImages(t *testing.T) {
	checkRuntime(t, "Dockerfile", "/usr/local/bin/accounts")
	st := checkRuntime(t, "Dockerfile.migrate", "/usr/local/bin/shiplock")
	copies := find(st, "COPY")
	if len(copies) != 1 || copies[0] != "migrations /migrations" {
		t.Errorf("migration image COPY = %v, want the migrations at /migrations, where the release image's SHIPLOCK_DIR points", copies)
	}
	if _, err := os.Stat("migrations"); err != nil {
		t.Errorf("the build context has no migrations directory: %v", err)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procResult is one process run, timed from just before fork to just after
// wait.
type procResult struct {
	Wall     time.Duration
	CPU      time.Duration // user + system time of the process (and of GNU time around it)
	ExitCode int
	MaxRSSKB int64 // the child's peak resident set
	// RSSUpperBound: MaxRSSKB came from wait4 and may be the bench's own
	// RSS (see runRSS).
	RSSUpperBound bool
	Stdout        string
	Stderr        string
}

func (r procResult) ok() bool { return r.ExitCode == 0 }

// tail returns the last lines of the process's output, for error reports.
func (r procResult) tail() string {
	out := strings.TrimSpace(r.Stderr + "\n" + r.Stdout)
	lines := strings.Split(out, "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// childEnv is the environment of every measured process: the bench's own,
// minus settings that would make a tool connect somewhere else than the URL
// it is given.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "GOOSE_") || k == "DATABASE_URL" || k == "SHIPLOCK_DIR" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// command is a prepared invocation of one tool.
type command struct {
	path string
	args []string
}

func (c command) cmd(ctx context.Context) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func finish(cmd *exec.Cmd, err error, wall time.Duration, stdout, stderr *bytes.Buffer) (procResult, error) {
	r := procResult{Wall: wall, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
		if r.ExitCode < 0 {
			r.ExitCode = 128 // killed by a signal
		}
	default:
		return r, err
	}
	if cmd.ProcessState != nil {
		r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKB = ru.Maxrss // kilobytes on Linux
		}
	}
	return r, nil
}

// run runs c once and measures it.
func (c command) run(ctx context.Context) (procResult, error) {
	cmd, stdout, stderr := c.cmd(ctx)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	return finish(cmd, err, wall, stdout, stderr)
}

// runRSS runs c under GNU time, which reports the child's true peak RSS.
// A Go parent cannot: os/exec starts children with vfork (CLONE_VM), and
// Linux folds the high-water mark of the address space a process leaves at
// execve into its ru_maxrss, so wait4 reports at least the bench's own RSS
// (about 10 MiB, more than a no-op tool uses). GNU time forks a fresh
// child from a 1-2 MiB process. Its fork adds well under a millisecond, so
// runRSS is used only for the fresh applies. Without GNU time, the rusage
// figure is kept and marked as an upper bound.
func (c command) runRSS(ctx context.Context, gnuTime, tmpDir string) (procResult, error) {
	if gnuTime == "" {
		r, err := c.run(ctx)
		r.RSSUpperBound = true
		return r, err
	}
	f, err := os.CreateTemp(tmpDir, "rss-*")
	if err != nil {
		return procResult{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	wrapped := command{gnuTime, append([]string{"-f", "%M", "-o", f.Name(), c.path}, c.args...)}
	r, err := wrapped.run(ctx)
	if err != nil {
		return r, err
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	out, err := os.ReadFile(f.Name())
	if err != nil {
		return r, err
	}
	// "Command exited with non-zero status N" may come first.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kb, err := strconv.ParseInt(strings.TrimSpace(lines[len(lines)-1]), 10, 64)
	if err != nil {
		return r, fmt.Errorf("read peak RSS from GNU time: %q", out)
	}
	r.MaxRSSKB = kb
	return r, nil
}

// findGNUTime returns the path of GNU time, or "" when there is none.
func findGNUTime(ctx context.Context) string {
	for _, p := range []string{"/usr/bin/time", "/bin/time"} {
		out, err := exec.CommandContext(ctx, p, "-f", "%M", "true").CombinedOutput()
		if err != nil {
			continue
		}
		if _, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return p
		}
	}
	return ""
}

// runGroup starts n copies of c together and waits for all of them. The
// wall time runs from before the first fork to after the last exit.
func (c command) runGroup(ctx context.Context, n int) (time.Duration, []procResult, error) {
	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr *bytes.Buffer
		startErr       error
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd, o, e := c.cmd(ctx)
		procs[i] = proc{cmd: cmd, stdout: o, stderr: e}
	}
	start := time.Now()
	for i := range procs {
		procs[i].startErr = procs[i].cmd.Start()
	}
	results := make([]procResult, n)
	var firstErr error
	for i, p := range procs {
		if p.startErr != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("start %s: %w", c.path, p.startErr))
			continue
		}
		err := p.cmd.Wait()
		results[i], err = finish(p.cmd, err, 0, p.stdout, p.stderr)
		firstErr = cmpErr(firstErr, err)
	}
	wall := time.Since(start)
	return wall, results, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

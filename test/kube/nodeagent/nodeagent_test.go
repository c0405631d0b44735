package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestExpandVars(t *testing.T) {
	env := map[string]string{"PORT_NUM": "20001", "HOST": "db"}
	for in, want := range map[string]string{
		"$(PORT_NUM)":            "20001",
		"http://$(HOST):$(PORT)": "http://db:$(PORT)", // undefined: kept
		"$$(HOST)":               "$(HOST)",           // escaped
		"a$b$(HOST":              "a$b$(HOST",
		"":                       "",
	} {
		if got := expandVars(in, env); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRewrite(t *testing.T) {
	ms := []mount{{"/migrations", "/p/volumes/m"}, {"/migrations/extra", "/p/volumes/x"}, {"/dev/termination-log", "/p/termination/main.0"}, {"/", "/nope"}}
	sortMounts(ms)
	for in, want := range map[string]string{
		"/migrations":                "/p/volumes/m",
		"/migrations/001.sql":        "/p/volumes/m/001.sql",
		"/migrations/extra/a.sql":    "/p/volumes/x/a.sql",
		"/migrationsX":               "/migrationsX",
		"--dir=/migrations/sub":      "--dir=/p/volumes/m/sub",
		"/dev/termination-log":       "/p/termination/main.0",
		"--log=/dev/termination-log": "--log=/p/termination/main.0",
		"/etc/passwd":                "/etc/passwd",
		"plain":                      "plain",
	} {
		if got := rewriteArgs([]string{in}, ms)[0]; got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	if got := rewriteValue("--dir=/migrations", ms); got != "--dir=/migrations" {
		t.Errorf("env values are rewritten whole only, got %q", got)
	}
}

func TestImageNames(t *testing.T) {
	for in, want := range map[string][2]string{
		"shiplock.test/shiplock:dev":       {"shiplock.test/shiplock", "shiplock"},
		"localhost:5000/a/b:v1@sha256:abc": {"localhost:5000/a/b", "b"},
		"busybox":                          {"busybox", "busybox"},
		"registry.test:443/tools/toolbox":  {"registry.test:443/tools/toolbox", "toolbox"},
	} {
		if r, b := imageRepo(in), imageBaseName(in); r != want[0] || b != want[1] {
			t.Errorf("%q: repo %q base %q, want %q", in, r, b, want)
		}
	}
	p := &provider{cfg: config{images: map[string]string{"shiplock.test/shiplock": "/bin/true"}}}
	for _, cmd := range []string{"shiplock", "/shiplock", "/usr/local/bin/shiplock", "true"} {
		argv, err := p.resolveCommand("shiplock.test/shiplock:dev", []string{cmd, "up"})
		if err != nil || argv[0] != "/bin/true" || argv[1] != "up" {
			t.Errorf("command %q: %v %v", cmd, argv, err)
		}
	}
	if _, err := p.resolveCommand("shiplock.test/shiplock:dev", []string{"/no/such/binary"}); err == nil {
		t.Error("unknown command resolved")
	}
	if _, err := p.resolveArgv(&corev1.Container{Image: "unmapped.test/x"}, nil, nil); err == nil {
		t.Error("unmapped image without command resolved")
	}
}

func TestLastLines(t *testing.T) {
	data := []byte("a\nb\nc\n")
	for _, tc := range []struct {
		lines, bytes int
		want         string
	}{{2, 100, "b\nc\n"}, {10, 100, "a\nb\nc\n"}, {3, 3, "\nc\n"}, {1, 100, "c\n"}} {
		if got := string(lastLines(data, tc.lines, tc.bytes)); got != tc.want {
			t.Errorf("lastLines(%d, %d) = %q, want %q", tc.lines, tc.bytes, got, tc.want)
		}
	}
}

func TestTerminationMessage(t *testing.T) {
	dir := t.TempDir()
	term, logf := filepath.Join(dir, "term"), filepath.Join(dir, "log")
	var log strings.Builder
	for i := range 100 {
		log.WriteString(strings.Repeat("x", 10) + string(rune('0'+i%10)) + "\n")
	}
	must(t, os.WriteFile(logf, []byte(log.String()), 0o644))
	must(t, os.WriteFile(term, nil, 0o644))
	c := &corev1.Container{TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}

	if got := terminationMessage(c, term, logf, 0); got != "" {
		t.Errorf("exit 0, empty file: %q", got)
	}
	got := terminationMessage(c, term, logf, 1)
	if n := strings.Count(got, "\n"); n != 80 || len(got) != 80*12 {
		t.Errorf("fallback: %d lines, %d bytes", n, len(got))
	}
	must(t, os.WriteFile(term, []byte(strings.Repeat("y", 5000)), 0o644))
	if got := terminationMessage(c, term, logf, 1); len(got) != 4096 {
		t.Errorf("file wins and is cut to its last 4096 bytes, got %d bytes", len(got))
	}
	c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	must(t, os.WriteFile(term, nil, 0o644))
	if got := terminationMessage(c, term, logf, 1); got != "" {
		t.Errorf("File policy falls back to nothing, got %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
}

func TestGetPhase(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecarSpec := &corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: &always}}, Containers: []corev1.Container{{Name: "main"}}}
	initSpec := func(p corev1.RestartPolicy) *corev1.PodSpec {
		return &corev1.PodSpec{RestartPolicy: p, InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{Name: "main"}}}
	}
	yes := true
	for _, tc := range []struct {
		name           string
		spec           *corev1.PodSpec
		init, regular  []corev1.ContainerStatus
		terminal, live bool
		want           corev1.PodPhase
	}{
		{"init running", initSpec(corev1.RestartPolicyNever),
			[]corev1.ContainerStatus{{State: running()}}, []corev1.ContainerStatus{{State: waiting("PodInitializing", "")}}, false, false, corev1.PodPending},
		{"init failed, Never", initSpec(corev1.RestartPolicyNever),
			[]corev1.ContainerStatus{{State: exited(1)}}, []corev1.ContainerStatus{{State: waiting("PodInitializing", "")}}, false, false, corev1.PodFailed},
		{"init crash loop, Always", initSpec(corev1.RestartPolicyAlways),
			[]corev1.ContainerStatus{{State: waiting("CrashLoopBackOff", ""), LastTerminationState: exited(1)}}, []corev1.ContainerStatus{{State: waiting("PodInitializing", "")}}, false, false, corev1.PodPending},
		{"main running", initSpec(corev1.RestartPolicyNever),
			[]corev1.ContainerStatus{{State: exited(0)}}, []corev1.ContainerStatus{{State: running()}}, false, true, corev1.PodRunning},
		{"main done, not terminal yet, Never", initSpec(corev1.RestartPolicyNever),
			[]corev1.ContainerStatus{{State: exited(0)}}, []corev1.ContainerStatus{{State: exited(0)}}, false, false, corev1.PodSucceeded},
		{"main failed, OnFailure: restarting", initSpec(corev1.RestartPolicyOnFailure),
			[]corev1.ContainerStatus{{State: exited(0)}}, []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff", ""), LastTerminationState: exited(2)}}, false, false, corev1.PodRunning},
		{"main failed, terminal", initSpec(corev1.RestartPolicyOnFailure),
			[]corev1.ContainerStatus{{State: exited(0)}}, []corev1.ContainerStatus{{State: exited(2)}}, true, false, corev1.PodFailed},
		{"sidecar starting", sidecarSpec,
			[]corev1.ContainerStatus{{State: running(), Started: new(bool)}}, []corev1.ContainerStatus{{State: waiting("PodInitializing", "")}}, false, false, corev1.PodPending},
		{"sidecar runs after main succeeded", sidecarSpec,
			[]corev1.ContainerStatus{{State: running(), Started: &yes}}, []corev1.ContainerStatus{{State: exited(0)}}, false, false, corev1.PodRunning},
		{"sidecar stopped with 143, main succeeded, terminal", sidecarSpec,
			[]corev1.ContainerStatus{{State: exited(143)}}, []corev1.ContainerStatus{{State: exited(0)}}, true, false, corev1.PodSucceeded},
	} {
		if got := getPhase(tc.spec, tc.init, tc.regular, tc.terminal, tc.live); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestMergeStatusKeepsForeignConditions(t *testing.T) {
	pod := &corev1.Pod{
		Spec: corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.test/gate"}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		}},
	}
	ours := &corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
	}}
	got := mergeStatus(pod, ours)
	if got.QOSClass != corev1.PodQOSBestEffort || got.Phase != corev1.PodRunning {
		t.Errorf("merged: %+v", got)
	}
	conds := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range got.Conditions {
		conds[c.Type] = c
	}
	if len(got.Conditions) != 3 || conds[corev1.PodScheduled].Status != corev1.ConditionTrue {
		t.Errorf("conditions: %+v", got.Conditions)
	}
	if r := conds[corev1.PodReady]; r.Status != corev1.ConditionFalse || r.Reason != "ReadinessGatesNotReady" {
		t.Errorf("Ready with a missing gate: %+v", r)
	}
}

func TestFormatMap(t *testing.T) {
	if got, want := formatMap(map[string]string{"b": "2", "a": `q"`}), "a=\"q\\\"\"\nb=\"2\""; got != want {
		t.Errorf("formatMap = %q, want %q", got, want)
	}
}

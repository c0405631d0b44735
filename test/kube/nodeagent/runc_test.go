package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestResolveUser(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	yes := true
	nonRoot := &corev1.SecurityContext{RunAsNonRoot: &yes}
	for _, tc := range []struct {
		name      string
		pod       *corev1.PodSecurityContext
		ctr       *corev1.SecurityContext
		imageUser string
		want      containerUser
		reason    string // "": no error; "config": configError; "other"
		msg       string
	}{
		{name: "image user", imageUser: "65532:65532", ctr: nonRoot, want: containerUser{65532, 65532}},
		{name: "arbitrary uid (OpenShift)", imageUser: "65532:65532", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: i64(1000680000)}, want: containerUser{1000680000, 65532}},
		{name: "pod-level", imageUser: "", pod: &corev1.PodSecurityContext{RunAsUser: i64(7), RunAsGroup: i64(8)}, want: containerUser{7, 8}},
		{name: "root image", imageUser: "", ctr: nonRoot, reason: "config", msg: "container has runAsNonRoot and image will run as root"},
		{name: "root by uid 0", imageUser: "0:0", ctr: nonRoot, reason: "config", msg: "image will run as root"},
		{name: "non-numeric", imageUser: "nonroot", ctr: nonRoot, reason: "config", msg: "image has non-numeric user (nonroot), cannot verify user is non-root"},
		{name: "non-numeric, runAsUser given", imageUser: "nonroot", ctr: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: i64(5)}, want: containerUser{5, 0}},
		{name: "root allowed without runAsNonRoot", imageUser: "", want: containerUser{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.PodSpec{SecurityContext: tc.pod}
			c := &corev1.Container{Name: "c", SecurityContext: tc.ctr}
			u, err := resolveUser(pod, c, tc.imageUser, "p")
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.reason == "config":
				if _, ok := err.(configError); !ok || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want a configError with %q", err, tc.msg)
				}
				return
			}
			if u != tc.want {
				t.Errorf("user %+v, want %+v", u, tc.want)
			}
		})
	}
}

func TestContainerArgv(t *testing.T) {
	img := imageConfig{Entrypoint: []string{"/usr/local/bin/shiplock"}, Cmd: []string{"up"}}
	for _, tc := range []struct {
		command, args []string
		want          string
	}{
		{nil, nil, "/usr/local/bin/shiplock up"},
		{nil, []string{"status"}, "/usr/local/bin/shiplock status"},
		{[]string{"shiplock"}, nil, "shiplock"},
		{[]string{"shiplock"}, []string{"down"}, "shiplock down"},
	} {
		if got := strings.Join(containerArgv(img, tc.command, tc.args), " "); got != tc.want {
			t.Errorf("command %v args %v: %q, want %q", tc.command, tc.args, got, tc.want)
		}
	}
}

func TestContainerEnvList(t *testing.T) {
	img := imageConfig{Env: []string{"PATH=/usr/local/bin", "SHIPLOCK_DIR=/migrations"}}
	got := strings.Join(containerEnvList(img, map[string]string{"SHIPLOCK_DIR": "/m", "A": "1"}), " ")
	if want := "A=1 PATH=/usr/local/bin SHIPLOCK_DIR=/m"; got != want {
		t.Errorf("env %q, want %q (the pod's value wins)", got, want)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"a/b": "a/b:latest", "a/b:v1": "a/b:v1", "host:5000/b": "host:5000/b:latest", "a@sha256:x": "a@sha256:x"} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestImageStoreSeesAddedImages: a name added to index.json (replaced by a
// rename, as imagebuild.AppendLayout does) after the store was opened is
// found; one that is in neither is not.
func TestImageStoreSeesAddedImages(t *testing.T) {
	dir := t.TempDir()
	write := func(names ...string) {
		t.Helper()
		var ms []string
		for i, n := range names {
			ms = append(ms, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%064d","size":1,"annotations":{"%s":"%s"}}`, i, refNameAnnotation, n))
		}
		tmp := filepath.Join(dir, ".index.json.tmp")
		if err := os.WriteFile(tmp, []byte(`{"schemaVersion":2,"manifests":[`+strings.Join(ms, ",")+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "index.json")); err != nil {
			t.Fatal(err)
		}
	}
	write("img.test/shiplock:dev")
	s, err := newImageStore(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !s.has("img.test/shiplock:dev") || s.has("img.test/m:1") {
		t.Fatalf("before the append: has(shiplock:dev)=%v has(m:1)=%v", s.has("img.test/shiplock:dev"), s.has("img.test/m:1"))
	}
	write("img.test/shiplock:dev", "img.test/m:1")
	if !s.has("img.test/m:1") {
		t.Fatal("an image added to index.json after the start is not found")
	}
	if d, ok := s.lookup("img.test/m:1"); !ok || d != fmt.Sprintf("sha256:%064d", 1) {
		t.Errorf("lookup(m:1) = %s, %v", d, ok)
	}
	if s.has("shiplock.test/toolbox:dev") {
		t.Error("an image in no index.json is found")
	}
}

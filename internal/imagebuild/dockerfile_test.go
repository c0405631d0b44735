package imagebuild_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The Dockerfiles stay for Docker users; these tests hold them to the image
// the Go builder makes, and the manifests' command to both.

// stage is the final stage of a Dockerfile: instruction -> arguments, in
// order (line continuations joined, comments dropped).
type stage struct{ cmds, args []string }

func finalStage(t *testing.T, file string) stage {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st stage
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		if cmd = strings.ToUpper(cmd); cmd == "FROM" {
			st = stage{}
		}
		st.cmds, st.args = append(st.cmds, cmd), append(st.args, strings.TrimSpace(args))
	}
	return st
}

func (s stage) all(cmd string) []string {
	var out []string
	for i, c := range s.cmds {
		if c == cmd {
			out = append(out, s.args[i])
		}
	}
	return out
}

func (s stage) last(cmd string) string {
	a := s.all(cmd)
	if len(a) == 0 {
		return ""
	}
	return a[len(a)-1]
}

func execForm(t *testing.T, file, cmd, s string) []string {
	t.Helper()
	if s == "" {
		return nil
	}
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		t.Errorf("%s: %s %s is not exec form (no shell in the image)", file, cmd, s)
	}
	return argv
}

// compare checks a Dockerfile's final stage against img: ENV, USER,
// ENTRYPOINT, CMD, and that every COPY destination is a file of the image.
func compare(t *testing.T, file string, img v1.Image) {
	t.Helper()
	st := finalStage(t, file)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if got := st.all("ENV"); len(got) > 0 && strings.Join(got, " ") != strings.Join(c.Env, " ") {
		t.Errorf("%s: ENV %v, the built image %v", file, got, c.Env)
	}
	if got := st.last("USER"); got != c.User {
		t.Errorf("%s: USER %q, the built image %q", file, got, c.User)
	}
	if got := execForm(t, file, "ENTRYPOINT", st.last("ENTRYPOINT")); strings.Join(got, " ") != strings.Join(c.Entrypoint, " ") {
		t.Errorf("%s: ENTRYPOINT %q, the built image %q", file, got, c.Entrypoint)
	}
	if got := execForm(t, file, "CMD", st.last("CMD")); strings.Join(got, " ") != strings.Join(c.Cmd, " ") {
		t.Errorf("%s: CMD %q, the built image %q", file, got, c.Cmd)
	}
	for _, r := range st.all("RUN") {
		t.Errorf("%s: the final stage runs %q: there is no shell", file, r)
	}
	fs := files(t, img)
	for _, cp := range st.all("COPY") {
		f := strings.Fields(cp)
		dst := f[len(f)-1]
		if _, ok := fs[strings.TrimSuffix(dst, "/")]; !ok {
			t.Errorf("%s: COPY to %s, which the built image does not have", file, dst)
		}
	}
}

func TestDockerfilesDescribeTheBuiltImages(t *testing.T) {
	res, _ := build(t)
	release := image(t, res[0], "shiplock:dev", "amd64")
	compare(t, filepath.Join(moduleDir, "Dockerfile"), release)
	if st := finalStage(t, filepath.Join(moduleDir, "Dockerfile")); st.last("FROM") != "scratch" {
		t.Errorf("Dockerfile: final stage FROM %s, the builder uses scratch", st.last("FROM"))
	}
	compare(t, filepath.Join(moduleDir, "examples/accounts/Dockerfile"), image(t, res[0], "accounts:v1", "amd64"))
	compare(t, filepath.Join(moduleDir, "examples/accounts/Dockerfile.migrate"), image(t, res[0], "accounts-migrate:v2", "amd64"))
}

// resolve finds command in img the way a container runtime does: a name
// without a slash through the image's PATH.
func resolve(t *testing.T, img v1.Image, command string) (string, bool) {
	t.Helper()
	fs := files(t, img)
	if strings.Contains(command, "/") {
		_, ok := fs[path.Clean(command)]
		return path.Clean(command), ok
	}
	cf, _ := img.ConfigFile()
	pathVar := ""
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := path.Join(dir, command)
		if e, ok := fs[p]; ok && e.mode&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// TestManifestCommandInImage: every shiplock container of the committed
// accounts manifests (what "shiplock kube" renders) runs a command that the
// migration image has, the same file as its entrypoint.
func TestManifestCommandInImage(t *testing.T) {
	res, _ := build(t)
	img := image(t, res[0], "accounts-migrate:v1", "amd64")
	cf, _ := img.ConfigFile()
	n := 0
	for _, file := range []string{"init/deployment.yaml", "job/job.yaml", "gate/job.yaml", "gate/deployment.yaml"} {
		raw, err := os.ReadFile(filepath.Join(moduleDir, "examples/accounts/deploy", file))
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Spec struct {
				Template struct {
					Spec corev1.PodSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		ps := obj.Spec.Template.Spec
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			if !strings.Contains(c.Image, "accounts-migrate") {
				continue
			}
			n++
			if len(c.Command) == 0 {
				t.Errorf("%s: container %s has no command", file, c.Name)
				continue
			}
			p, ok := resolve(t, img, c.Command[0])
			if !ok || p != cf.Config.Entrypoint[0] {
				t.Errorf("%s: container %s runs %q: resolves to %q (found %v) in the image, whose entrypoint is %q", file, c.Name, c.Command[0], p, ok, cf.Config.Entrypoint[0])
			}
			if c.SecurityContext == nil || c.SecurityContext.RunAsUser != nil || c.SecurityContext.RunAsNonRoot == nil || !*c.SecurityContext.RunAsNonRoot {
				t.Errorf("%s: container %s: securityContext %+v, want runAsNonRoot and the image's user", file, c.Name, c.SecurityContext)
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d shiplock containers in the manifests, want at least 4", n)
	}
	// The old layout's command would not resolve: the check can fail.
	if _, ok := resolve(t, img, "/shiplock"); ok {
		t.Error("/shiplock exists in the image")
	}
}

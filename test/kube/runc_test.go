package kube_test

// The node agent runs the images cmd/shiplock-image built under runc, as a
// container runtime would (see test/kube/README.md, "Images under runc").

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shiplock/shiplock/test/kube/kubetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// restricted is the securityContext shiplock renders: no UID of its own.
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func runPod(t *testing.T, e *kubetest.Env, c corev1.Container) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{c}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Client.CoreV1().Pods(e.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pod
}

func terminated(p *corev1.Pod) *corev1.ContainerStateTerminated {
	if len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return p.Status.ContainerStatuses[0].State.Terminated
}

// TestImageRunsAsImageUser: a migration image runs under runc as its own
// numeric user with a read-only root, on the host's network, and shiplock
// writes its termination message to /dev/termination-log (no env var tells
// it another path).
func TestImageRunsAsImageUser(t *testing.T) {
	kubetest.RequireImages(t)
	e := kubetest.New(t)
	c := corev1.Container{
		Name: "migrate", Image: kubetest.ImagePrefix + "accounts-migrate:v1", Command: []string{"shiplock"},
		// Nothing listens on port 1: "not ready" within the timeout, exit 6,
		// after a connection attempt on 127.0.0.1 from the container.
		Args:            []string{"up", "--wait-timeout", "1s"},
		Env:             []corev1.EnvVar{{Name: "DATABASE_URL", Value: "postgres://u@127.0.0.1:1/db?sslmode=disable"}},
		SecurityContext: restricted(),
	}
	runPod(t, e, c)
	p := e.WaitForPod(t, "p", timeout, kubetest.PodTerminal)
	st := terminated(p)
	if st == nil || st.Reason != "Error" || st.ExitCode == 0 || st.ExitCode == 128 {
		t.Fatalf("container state %s", kubetest.DescribePod(p))
	}
	if !strings.Contains(st.Message, "not ready") && !strings.Contains(st.Message, "127.0.0.1:1") {
		t.Errorf("termination message %q, want shiplock's summary from /dev/termination-log", st.Message)
	}
	if !strings.HasPrefix(st.ContainerID, "runc://") || !strings.Contains(p.Status.ContainerStatuses[0].ImageID, "@sha256:") {
		t.Errorf("not run from the image under runc: id %q image %q", st.ContainerID, p.Status.ContainerStatuses[0].ImageID)
	}
}

// TestImageMissingCommand: a command the image does not have fails to start
// with the runtime's message, as the old manifests' "/shiplock" would.
func TestImageMissingCommand(t *testing.T) {
	kubetest.RequireImages(t)
	for _, tc := range []struct{ command, msg string }{
		{"/shiplock", "no such file or directory"},
		{"shiplock-missing", "executable file not found in $PATH"},
	} {
		t.Run(strings.TrimPrefix(tc.command, "/"), func(t *testing.T) {
			e := kubetest.New(t)
			runPod(t, e, corev1.Container{Name: "migrate", Image: kubetest.ReleaseImage, Command: []string{tc.command}, Args: []string{"up"}, SecurityContext: restricted()})
			p := e.WaitForPod(t, "p", timeout, kubetest.PodTerminal)
			st := terminated(p)
			if st == nil || st.Reason != "StartError" || st.ExitCode != 128 || !strings.Contains(st.Message, tc.msg) {
				t.Fatalf("want StartError 128 with %q: %s", tc.msg, kubetest.DescribePod(p))
			}
		})
	}
}

// TestImageRunAsNonRootRefusesRoot: runAsNonRoot with a root user is the
// kubelet's CreateContainerConfigError, before the runtime is asked.
func TestImageRunAsNonRootRefusesRoot(t *testing.T) {
	kubetest.RequireImages(t)
	e := kubetest.New(t)
	sc := restricted()
	sc.RunAsUser = ptr.To[int64](0)
	runPod(t, e, corev1.Container{Name: "migrate", Image: kubetest.ReleaseImage, Command: []string{"shiplock"}, Args: []string{"help"}, SecurityContext: sc})
	p := e.WaitForPod(t, "p", timeout, func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	if w := p.Status.ContainerStatuses[0].State.Waiting; !strings.Contains(w.Message, "runAsUser breaks non-root policy") {
		t.Errorf("message %q", w.Message)
	}
}

// TestImageArbitraryUID: the binary works under a UID the image does not
// name (OpenShift's restricted SCC assigns one). No command: the image's
// entrypoint runs with the container's args; the migration image's
// /migrations is readable by anyone.
func TestImageArbitraryUID(t *testing.T) {
	kubetest.RequireImages(t)
	e := kubetest.New(t)
	sc := restricted()
	sc.RunAsUser = ptr.To[int64](1000680000)
	runPod(t, e, corev1.Container{Name: "migrate", Image: kubetest.ImagePrefix + "accounts-migrate:v1", Args: []string{"validate"}, SecurityContext: sc})
	p := e.WaitForPod(t, "p", timeout, kubetest.PodTerminal)
	if st := terminated(p); st == nil || st.ExitCode != 0 {
		t.Fatalf("shiplock validate as UID 1000680000: %s", kubetest.DescribePod(p))
	}
	if log := e.Logs(t, "p", "migrate"); !strings.Contains(log, "ok: 6 migrations in /migrations") {
		t.Errorf("shiplock validate printed %q", log)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// provider implements virtual-kubelet's pod lifecycle interface by running
// pods as local processes. Statuses are written by each pod's own writer
// goroutine (see status.go), not through virtual-kubelet's NotifyPods
// callback, so that they can be merged with conditions owned by others
// (PodScheduled, DisruptionTarget) the way the kubelet's status manager does.
type provider struct {
	cfg    config
	client kubernetes.Interface
	hostIP string
	store  *imageStore // nil without --image-store

	mu    sync.Mutex
	pods  map[string]*podRun // namespace/name -> run
	ports map[int]string     // allocated pod port -> pod key

	svcOnce sync.Once
	svcEnv  map[string]string // KUBERNETES_SERVICE_* variables
}

var (
	_ nodeutil.Provider = (*provider)(nil)
	_ node.PodNotifier  = (*provider)(nil)
)

func newProvider(client kubernetes.Interface, cfg config, hostIP string) *provider {
	return &provider{cfg: cfg, client: client, hostIP: hostIP, pods: map[string]*podRun{}, ports: map[int]string{}}
}

// NotifyPods makes virtual-kubelet treat the provider as asynchronous, so it
// does not poll GetPodStatus. The callback is not used: see provider.
func (p *provider) NotifyPods(context.Context, func(*corev1.Pod)) {}

func podKey(ns, name string) string { return ns + "/" + name }

func (p *provider) get(ns, name string) *podRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pods[podKey(ns, name)]
}

func (p *provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	k := podKey(pod.Namespace, pod.Name)
	p.mu.Lock()
	if old, ok := p.pods[k]; ok && old.uid == pod.UID {
		p.mu.Unlock()
		return nil
	}
	r := newPodRun(p, pod)
	p.pods[k] = r
	p.mu.Unlock()
	log.G(ctx).Infof("nodeagent: starting pod %s", k)
	go r.run()
	return nil
}

func (p *provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	if r := p.get(pod.Namespace, pod.Name); r != nil && r.uid == pod.UID {
		r.mu.Lock()
		r.meta.Labels, r.meta.Annotations = pod.Labels, pod.Annotations
		r.mu.Unlock()
	}
	return nil
}

func (p *provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	r := p.get(pod.Namespace, pod.Name)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s not found", pod.Namespace, pod.Name)
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	r.mu.Lock()
	r.meta.DeletionTimestamp = pod.DeletionTimestamp
	r.meta.DeletionGracePeriodSeconds = pod.DeletionGracePeriodSeconds
	r.mu.Unlock()
	log.G(ctx).Infof("nodeagent: stopping pod %s/%s (grace %ds)", pod.Namespace, pod.Name, grace)
	r.requestStop(time.Duration(grace)*time.Second, "", "")
	go p.forget(r, true)
	return nil
}

// forget waits for the pod's processes to exit and its final status to be
// written, then drops it; with deleteAPI it also deletes the API object with
// grace 0 and a UID precondition, as the kubelet does once a terminating pod
// has no running containers.
func (p *provider) forget(r *podRun, deleteAPI bool) {
	<-r.done
	r.flush(10 * time.Second)
	k := podKey(r.meta.Namespace, r.meta.Name)
	p.mu.Lock()
	if p.pods[k] == r {
		delete(p.pods, k)
	}
	for port, owner := range p.ports {
		if owner == string(r.uid) {
			delete(p.ports, port)
		}
	}
	p.mu.Unlock()
	r.closeWriter()
	if deleteAPI {
		opts := metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(r.uid))}
		err := p.client.CoreV1().Pods(r.meta.Namespace).Delete(context.Background(), r.meta.Name, opts)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			log.L.Warnf("nodeagent: final delete of %s: %v", k, err)
		}
	}
	// Logs, volumes and termination messages of a deleted pod are not needed
	// any more (the kubelet removes them too).
	_ = os.RemoveAll(r.dir)
}

func (p *provider) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	r := p.get(ns, name)
	if r == nil {
		return nil, errdefs.NotFoundf("pod %s/%s not found", ns, name)
	}
	return r.snapshot(), nil
}

func (p *provider) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	out := []*corev1.Pod{}
	for _, r := range p.runs() {
		out = append(out, r.snapshot())
	}
	return out, nil
}

func (p *provider) runs() []*podRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	runs := make([]*podRun, 0, len(p.pods))
	for _, r := range p.pods {
		runs = append(runs, r)
	}
	return runs
}

// stopAll stops every pod (agent shutdown), with a short grace period.
func (p *provider) stopAll() {
	runs := p.runs()
	for _, r := range runs {
		r.requestStop(2*time.Second, "", "")
	}
	for _, r := range runs {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// RunInContainer runs cmd beside the container's process with the container's
// environment and working directory (kubectl exec without a TTY).
func (p *provider) RunInContainer(ctx context.Context, ns, name, container string, cmd []string, io api.AttachIO) error {
	r := p.get(ns, name)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s not found", ns, name)
	}
	c := r.container(container)
	if c == nil {
		return errdefs.NotFoundf("container %s not found in pod %s/%s", container, ns, name)
	}
	r.mu.Lock()
	env, dir, running := c.env, c.dir, c.running
	r.mu.Unlock()
	if !running {
		return errdefs.InvalidInputf("container %s is not running", container)
	}
	argv, err := p.resolveCommand(c.spec.Image, r.rewriteArgs(c, cmd))
	if err != nil {
		return errdefs.InvalidInput(err.Error())
	}
	x := exec.CommandContext(ctx, argv[0], argv[1:]...)
	x.Env, x.Dir = envList(env), dir
	x.Stdin, x.Stdout, x.Stderr = io.Stdin(), io.Stdout(), io.Stderr()
	return x.Run()
}

func (p *provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("nodeagent: attach is not supported")
}

func (p *provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("nodeagent: port-forward is not supported (pods listen on 127.0.0.1: dial them directly)")
}

func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

// ---------------------------------------------------------------------------
// images

// errImage is a container whose image has no local binary: the container
// stays Waiting with ErrImagePull, as with an image that cannot be pulled.
type errImage struct{ image string }

func (e errImage) Error() string {
	return fmt.Sprintf("nodeagent: no local binary mapped for image %q (start the node agent with --image %s=PATH)", e.image, e.image)
}

// resolveArgv maps a container to the argv of a local process. A container
// without a command runs the image's binary with args. A container with a
// command runs the image's binary when command[0] names it (same base name
// as the mapped file, or as the image's last path element, e.g. "shiplock"
// or "/usr/bin/shiplock" for shiplock.test/shiplock:dev), else command[0]
// from the host's PATH.
func (p *provider) resolveArgv(c *corev1.Container, command, args []string) ([]string, error) {
	if len(command) > 0 {
		return p.resolveCommand(c.Image, append(append([]string{}, command...), args...))
	}
	mapped, ok := p.lookupImage(c.Image)
	if !ok {
		return nil, errImage{c.Image}
	}
	return append([]string{mapped}, args...), nil
}

// resolveCommand resolves argv[0] for a command run in a container of image.
func (p *provider) resolveCommand(image string, argv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	argv = append([]string{}, argv...)
	if mapped, ok := p.lookupImage(image); ok {
		b := filepath.Base(argv[0])
		if b == filepath.Base(mapped) || b == imageBaseName(image) {
			argv[0] = mapped
			return argv, nil
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("exec: %q: executable file not found on this host", argv[0])
	}
	argv[0] = path
	return argv, nil
}

func (p *provider) lookupImage(image string) (string, bool) {
	if b, ok := p.cfg.images[image]; ok {
		return b, true
	}
	b, ok := p.cfg.images[imageRepo(image)]
	return b, ok
}

// imageRepo strips the tag and digest: example.test/a/b:v1@sha256:x -> example.test/a/b.
func imageRepo(image string) string {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

// imageBaseName is the last path element of the repository: shiplock.test/shiplock:dev -> shiplock.
func imageBaseName(image string) string {
	r := imageRepo(image)
	return r[strings.LastIndex(r, "/")+1:]
}

// ---------------------------------------------------------------------------
// ports

// allocPort hands out a free loopback port from --pod-ports to the pod uid.
func (p *provider) allocPort(uid string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := p.cfg.portLo; port <= p.cfg.portHi; port++ {
		if _, used := p.ports[port]; used {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(p.hostIP, strconv.Itoa(port)))
		if err != nil {
			continue // taken by something else on the host
		}
		l.Close()
		p.ports[port] = uid
		return port, nil
	}
	return 0, fmt.Errorf("no free port left in %d-%d", p.cfg.portLo, p.cfg.portHi)
}

// ---------------------------------------------------------------------------
// process helpers

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// killGroup signals the process group of pid.
func killGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

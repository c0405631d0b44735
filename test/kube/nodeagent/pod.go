package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// kind tells the three sorts of containers apart.
type kind int

const (
	kindInit    kind = iota // regular init container: runs to completion, in order
	kindSidecar             // init container with restartPolicy Always (native sidecar)
	kindRegular             // spec.containers
)

// minGrace is the kubelet's minimum grace period when it kills a container.
const minGrace = 2 * time.Second

// ctr is one container of a pod and the state of its latest instance.
// All fields but spec, kind and index are guarded by podRun.mu.
type ctr struct {
	spec  *corev1.Container
	kind  kind
	index int // in spec.InitContainers or spec.Containers

	state, last corev1.ContainerState
	restarts    int32
	started     bool // the startup probe passed (or there is none) and the instance runs
	probeReady  bool // the readiness probe's latest verdict
	containerID string
	imageID     string
	attempts    int  // instances created so far; instance n logs to <name>.<n>.log
	running     bool // the latest instance is running
	env         map[string]string
	dir         string
	mounts      []mount
	runcID      string // the runc container of the running instance, if any
	waitReason  string // last Waiting reason reported (to log changes once)
}

// podRun is one pod on this node: its spec, its containers' states and the
// goroutines that run them.
type podRun struct {
	p    *provider
	uid  types.UID
	spec corev1.PodSpec // as received; never modified
	dir  string

	stopCh   chan struct{} // closed when the pod must stop (deleted, deadline, agent shutdown)
	stopOnce sync.Once
	done     chan struct{} // closed when every process has exited and the final status is published

	mu           sync.Mutex
	meta         metav1.ObjectMeta // labels/annotations follow UpdatePod
	ctrs         []*ctr            // init containers, then containers
	startTime    metav1.Time
	stopDeadline time.Time
	stopReason   string // pod status reason when stopped by the node (DeadlineExceeded)
	stopMessage  string
	terminal     bool
	conds        map[corev1.PodConditionType]corev1.PodCondition
	volumes      map[string]string // volume name -> host directory (or file, for hostPath files)
	ports        map[string]int    // "NAME=original" -> allocated port
	changed      chan struct{}     // closed and replaced on every change (log followers wait on it)

	// status writer (status.go)
	version, written uint64
	pending          *corev1.PodStatus
	kick             chan struct{}
	writtenCh        chan struct{}
	writerStop       chan struct{}
	writerOnce       sync.Once
}

func newPodRun(p *provider, pod *corev1.Pod) *podRun {
	r := &podRun{
		p: p, uid: pod.UID, spec: *pod.Spec.DeepCopy(), meta: *pod.ObjectMeta.DeepCopy(),
		dir:    filepath.Join(p.cfg.workDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID)),
		stopCh: make(chan struct{}), done: make(chan struct{}),
		startTime: now(), conds: map[corev1.PodConditionType]corev1.PodCondition{},
		volumes: map[string]string{}, ports: map[string]int{},
		changed: make(chan struct{}), kick: make(chan struct{}, 1),
		writtenCh: make(chan struct{}), writerStop: make(chan struct{}),
	}
	for i := range r.spec.InitContainers {
		c := &r.spec.InitContainers[i]
		k := kindInit
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			k = kindSidecar
		}
		r.ctrs = append(r.ctrs, newCtr(c, k, i, len(r.spec.InitContainers) > 0))
	}
	for i := range r.spec.Containers {
		r.ctrs = append(r.ctrs, newCtr(&r.spec.Containers[i], kindRegular, i, len(r.spec.InitContainers) > 0))
	}
	return r
}

func newCtr(c *corev1.Container, k kind, i int, hasInit bool) *ctr {
	reason := "ContainerCreating"
	if k != kindRegular || hasInit {
		reason = "PodInitializing"
	}
	return &ctr{spec: c, kind: k, index: i, state: waiting(reason, "")}
}

func now() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }

func waiting(reason, msg string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
}

func (r *podRun) key() string { return podKey(r.meta.Namespace, r.meta.Name) }

func (r *podRun) container(name string) *ctr {
	for _, c := range r.ctrs {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (r *podRun) stopped() bool {
	select {
	case <-r.stopCh:
		return true
	default:
		return false
	}
}

// requestStop asks the pod to stop: containers get SIGTERM, then SIGKILL
// once grace has passed. reason/message, if set, become the pod's status
// reason and message (the kubelet's DeadlineExceeded). Only the first call
// counts.
func (r *podRun) requestStop(grace time.Duration, reason, message string) {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopDeadline = time.Now().Add(grace)
		r.stopReason, r.stopMessage = reason, message
		r.mu.Unlock()
		close(r.stopCh)
	})
}

// stopGrace is the grace period left for a container killed because the pod stops.
func (r *podRun) stopGrace() time.Duration {
	r.mu.Lock()
	d := time.Until(r.stopDeadline)
	r.mu.Unlock()
	return max(d, minGrace)
}

func (r *podRun) podGrace() time.Duration {
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if r.spec.TerminationGracePeriodSeconds != nil {
		g = *r.spec.TerminationGracePeriodSeconds
	}
	return max(time.Duration(g)*time.Second, minGrace)
}

// run is the pod's life, in the kubelet's order: volumes, init containers and
// native sidecars in order, then the regular containers in parallel; once
// they are done (or the pod is stopped), the sidecars in reverse order.
func (r *podRun) run() {
	go r.writer()
	r.mu.Lock()
	r.publishLocked()
	r.mu.Unlock()
	defer close(r.done)

	if d := r.spec.ActiveDeadlineSeconds; d != nil {
		t := time.AfterFunc(time.Until(r.startTime.Add(time.Duration(*d)*time.Second)), func() {
			r.requestStop(r.podGrace(), "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
		})
		defer t.Stop()
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o755); err != nil {
		log.L.Errorf("nodeagent: %v", err)
	}
	for {
		err := r.setupVolumes()
		if err == nil {
			break
		}
		log.L.Warnf("nodeagent: pod %s: volumes: %v (retrying)", r.key(), err)
		r.event(corev1.EventTypeWarning, "FailedMount", err.Error())
		select {
		case <-r.stopCh:
			r.finish()
			return
		case <-time.After(time.Second):
		}
	}

	type sidecar struct {
		c          *ctr
		stop, done chan struct{}
		grace      time.Duration
	}
	var sidecars []*sidecar
	initOK := true
	for _, c := range r.ctrs {
		if c.kind == kindRegular || r.stopped() {
			break
		}
		if c.kind == kindSidecar {
			sc := &sidecar{c: c, stop: make(chan struct{}), done: make(chan struct{})}
			sidecars = append(sidecars, sc)
			go func() {
				defer close(sc.done)
				r.supervise(c, sc.stop, func() time.Duration { return sc.grace }, func(int) bool { return true })
			}()
			// The next init container starts once the sidecar has started
			// (its startup probe, if any, passed).
			if !r.waitFor(func() bool { return c.started }) {
				break
			}
			continue
		}
		restart := func(code int) bool { return code != 0 && r.spec.RestartPolicy != corev1.RestartPolicyNever }
		if code := r.supervise(c, r.stopCh, r.stopGrace, restart); code != 0 {
			initOK = false // restartPolicy Never (or stopped): the pod fails
			break
		}
	}
	if initOK && !r.stopped() {
		var wg sync.WaitGroup
		for _, c := range r.ctrs {
			if c.kind != kindRegular {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.supervise(c, r.stopCh, r.stopGrace, func(code int) bool {
					switch r.spec.RestartPolicy {
					case corev1.RestartPolicyAlways:
						return true
					case corev1.RestartPolicyOnFailure:
						return code != 0
					}
					return false
				})
			}()
		}
		wg.Wait()
	}
	for i := len(sidecars) - 1; i >= 0; i-- {
		sc := sidecars[i]
		sc.grace = r.podGrace()
		if r.stopped() {
			sc.grace = r.stopGrace()
		}
		close(sc.stop)
		<-sc.done
	}
	r.finish()
}

// waitFor waits until cond (evaluated under r.mu) holds; false if the pod
// was stopped first.
func (r *podRun) waitFor(cond func() bool) bool {
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-r.stopCh:
			return false
		case <-ch:
		}
	}
}

// finish marks the pod terminal, as the kubelet's status manager does when a
// pod's last container has stopped, and publishes the final status.
func (r *podRun) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.terminal = true
	unknown := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "ContainerStatusUnknown",
		Message: "The container could not be located when the pod was terminated"}}
	initialized := false
	lastStartedInit := -1
	for i, c := range r.ctrs {
		if c.kind == kindRegular && c.attempts > 0 {
			initialized = true
		}
		if c.kind != kindRegular && c.attempts > 0 {
			lastStartedInit = i
		}
	}
	for i, c := range r.ctrs {
		if c.state.Terminated != nil {
			continue
		}
		if (c.kind == kindRegular && initialized) || (c.kind != kindRegular && i <= lastStartedInit) {
			c.state = unknown
		}
	}
	r.publishLocked()
}

// supervise runs instances of c until one exits and restart says no, or
// stop is closed. It returns the exit code of the last instance, -1 if none
// could start.
func (r *podRun) supervise(c *ctr, stop <-chan struct{}, grace func() time.Duration, restart func(code int) bool) int {
	code := -1
	for {
		var ran bool
		code, ran = r.runOnce(c, stop, grace)
		if !ran || isClosed(stop) || !restart(code) {
			return code
		}
		if !r.backoff(c, stop) {
			return code
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// backoff waits before a restart (CrashLoopBackOff); false if stopped meanwhile.
func (r *podRun) backoff(c *ctr, stop <-chan struct{}) bool {
	r.mu.Lock()
	d := r.p.cfg.backoffInitial << min(c.restarts, 16)
	if d > r.p.cfg.backoffMax || d <= 0 {
		d = r.p.cfg.backoffMax
	}
	c.last = c.state
	c.state = waiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
		d, c.spec.Name, r.meta.Name, r.meta.Namespace, r.uid))
	r.publishLocked()
	r.mu.Unlock()
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

// setWaiting reports c as Waiting (once per reason in the agent's log).
func (r *podRun) setWaiting(c *ctr, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.waitReason != reason {
		log.L.Warnf("nodeagent: pod %s container %s: %s: %s", r.key(), c.spec.Name, reason, msg)
		c.waitReason = reason
	}
	if c.state.Terminated != nil {
		c.last = c.state
	}
	c.state = waiting(reason, msg)
	r.publishLocked()
}

// instance is one started process of a container.
type instance struct {
	pid      int
	exited   chan struct{}
	killOnce sync.Once
	signal   func(syscall.Signal) // set for runc containers: signals them through runc
}

// kill sends SIGTERM to the instance's process group, and SIGKILL once grace has passed.
func (in *instance) kill(grace time.Duration) {
	send := func(sig syscall.Signal) { killGroup(in.pid, sig) }
	if in.signal != nil {
		send = in.signal
	}
	in.killOnce.Do(func() {
		send(syscall.SIGTERM)
		go func() {
			select {
			case <-in.exited:
			case <-time.After(grace):
				send(syscall.SIGKILL)
			}
		}()
	})
}

// runOnce creates one instance of c and waits for it to exit (killing it if
// stop is closed). ran is false when stop was closed before a process could
// be started (waiting for a Secret, an unmapped image).
func (r *podRun) runOnce(c *ctr, stop <-chan struct{}, grace func() time.Duration) (code int, ran bool) {
	var env map[string]string
	for {
		var err error
		if env, err = r.containerEnv(c); err == nil {
			break
		}
		r.setWaiting(c, "CreateContainerConfigError", err.Error())
		select {
		case <-stop:
			return -1, false
		case <-time.After(time.Second):
		}
	}
	if err := r.assignPorts(c, env); err != nil {
		r.setWaiting(c, "CreateContainerError", err.Error())
		<-stop
		return -1, false
	}

	if r.p.store.has(c.spec.Image) {
		return r.runOnceRunc(c, env, stop, grace)
	}
	if len(c.spec.Command) == 0 {
		if _, ok := r.p.lookupImage(c.spec.Image); !ok {
			// Like an image that cannot be pulled: Waiting until the pod goes away.
			err := errImage{c.spec.Image}
			r.setWaiting(c, "ErrImagePull", err.Error())
			r.event(corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.spec.Image, err))
			<-stop
			return -1, false
		}
	}

	r.mu.Lock()
	attempt := c.attempts
	c.attempts++
	if attempt > 0 {
		c.restarts++
	}
	r.mu.Unlock()

	// The termination message file: one per instance, like the kubelet's.
	termDir := filepath.Join(r.dir, "termination")
	_ = os.MkdirAll(termDir, 0o777)
	termFile := filepath.Join(termDir, fmt.Sprintf("%s.%d", c.spec.Name, attempt))
	if f, err := os.OpenFile(termFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666); err == nil {
		f.Close()
	}
	mounts := r.mountsFor(c)
	if tp := c.spec.TerminationMessagePath; tp != "" {
		mounts = append(mounts, mount{ctrPath: tp, hostPath: termFile})
	}
	sortMounts(mounts)
	for k, v := range env {
		env[k] = rewriteValue(v, mounts)
	}
	for _, name := range r.p.cfg.termEnv {
		env[name] = termFile
	}
	command := rewriteArgs(expandAll(c.spec.Command, env), mounts)
	args := rewriteArgs(expandAll(c.spec.Args, env), mounts)
	dir := r.workingDir(c, mounts)

	logPath := r.logPath(c.spec.Name, attempt)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		logf = nil
	}
	closeLog := func() {
		if logf != nil {
			logf.Close()
		}
	}
	start := now()
	containerID := fmt.Sprintf("nodeagent://%s/%s/%d", r.uid, c.spec.Name, attempt)

	argv, err := r.p.resolveArgv(c.spec, command, args)
	var cmd *exec.Cmd
	if err == nil {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir = envList(env), dir
		if logf != nil {
			cmd.Stdout, cmd.Stderr = logf, logf
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
	}
	if err != nil {
		msg := fmt.Sprintf("failed to start container %q: %v", c.spec.Name, err)
		if logf != nil {
			fmt.Fprintln(logf, "nodeagent:", msg)
		}
		closeLog()
		r.setTerminated(c, 128, "StartError", msg, start, containerID)
		return 128, true
	}
	in := &instance{pid: cmd.Process.Pid, exited: make(chan struct{})}
	// Recorded so that stop.sh can kill what is left if the agent dies.
	pidFile := filepath.Join(r.dir, "pids", fmt.Sprintf("%s.%d", c.spec.Name, attempt))
	_ = os.MkdirAll(filepath.Dir(pidFile), 0o755)
	_ = os.WriteFile(pidFile, []byte(fmt.Sprint(in.pid)), 0o644)

	r.mu.Lock()
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}
	c.containerID, c.running, c.waitReason = containerID, true, ""
	c.imageID = "nodeagent://" + argv[0]
	c.env, c.dir, c.mounts = env, dir, mounts
	c.started = c.spec.StartupProbe == nil
	c.probeReady = false
	r.publishLocked()
	r.mu.Unlock()

	probeCtx, stopProbes := context.WithCancel(context.Background())
	go r.runProbes(probeCtx, c, in)

	waited := make(chan struct{})
	go func() {
		select {
		case <-waited:
		case <-stop:
			in.kill(grace())
		}
	}()
	_ = cmd.Wait()
	close(in.exited)
	close(waited)
	stopProbes()
	// A container's processes end with its main process.
	killGroup(in.pid, syscall.SIGKILL)
	_ = os.Remove(pidFile)
	closeLog()

	code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	r.setTerminated(c, code, reason, terminationMessage(c.spec, termFile, logPath, code), start, containerID)
	return code, true
}

func (r *podRun) setTerminated(c *ctr, code int, reason, msg string, start metav1.Time, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.running, c.started, c.probeReady = false, false, false
	c.containerID = id
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: msg, StartedAt: start, FinishedAt: now(), ContainerID: id}}
	r.publishLocked()
}

// workingDir is where the container's process starts: workingDir rewritten
// like any path, or, when it does not exist on the host, a directory of that
// name under the pod's root/; the pod directory when unset.
func (r *podRun) workingDir(c *ctr, mounts []mount) string {
	wd := c.spec.WorkingDir
	if wd == "" {
		return r.dir
	}
	if w := rewriteValue(wd, mounts); w != wd {
		_ = os.MkdirAll(w, 0o755)
		return w
	}
	if st, err := os.Stat(wd); err == nil && st.IsDir() {
		return wd
	}
	w := filepath.Join(r.dir, "root", filepath.Clean("/"+wd))
	_ = os.MkdirAll(w, 0o755)
	return w
}

func (r *podRun) logPath(container string, attempt int) string {
	return filepath.Join(r.dir, "logs", fmt.Sprintf("%s.%d.log", container, attempt))
}

// expandAll applies the kubelet's $(VAR) expansion to each string.
func expandAll(in []string, env map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expandVars(s, env)
	}
	return out
}

// expandVars implements the $(VAR) expansion the kubelet applies to command,
// args and env values: $(VAR) is replaced when VAR is defined and kept as is
// otherwise; $$ is an escaped $.
func expandVars(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if j := strings.IndexByte(s[i+2:], ')'); j >= 0 {
					if v, ok := env[s[i+2:i+2+j]]; ok {
						b.WriteString(v)
						i += j + 2
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// event records a Kubernetes Event about the pod (best effort).
func (r *podRun) event(typ, reason, msg string) {
	r.mu.Lock()
	ns, name := r.meta.Namespace, r.meta.Name
	r.mu.Unlock()
	t := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: name, UID: r.uid},
		Reason:         reason,
		Message:        msg,
		Type:           typ,
		Count:          1,
		FirstTimestamp: t,
		LastTimestamp:  t,
		Source:         corev1.EventSource{Component: "kubelet", Host: r.p.cfg.nodeName},
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = r.p.client.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
	}()
}

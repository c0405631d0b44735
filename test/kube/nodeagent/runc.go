package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Containers whose image is in the image store (--image-store) run under
// runc as a container runtime runs them: in the image's root file system,
// as the image's user unless the securityContext says otherwise, with the
// image's entrypoint, cmd, env and working directory merged with the
// container's as Kubernetes defines, volumes and the termination message
// file bind-mounted at their paths, in the host's network namespace (pods
// reach each other and the databases on 127.0.0.1 as in process mode).

// containerUser is the UID and GID the container runs as.
type containerUser struct{ uid, gid int64 }

// configError is a CreateContainerConfigError: the kubelet's checks that
// fail before the runtime is asked (runAsNonRoot).
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

// resolveUser applies the kubelet's rules: securityContext.runAsUser /
// runAsGroup (container, then pod) over the image's USER; runAsNonRoot
// refuses UID 0 and an image user it cannot verify (non-numeric).
func resolveUser(pod *corev1.PodSpec, c *corev1.Container, imageUser, podName string) (containerUser, error) {
	var runAsUser, runAsGroup *int64
	var nonRoot *bool
	if ps := pod.SecurityContext; ps != nil {
		runAsUser, runAsGroup, nonRoot = ps.RunAsUser, ps.RunAsGroup, ps.RunAsNonRoot
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			runAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			runAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
	}
	var u containerUser
	userPart, groupPart, _ := strings.Cut(imageUser, ":")
	numeric := true
	if runAsUser != nil {
		u.uid = *runAsUser
	} else if userPart == "" {
		u.uid = 0
	} else if n, err := strconv.ParseInt(userPart, 10, 64); err == nil {
		u.uid = n
	} else {
		numeric = false
	}
	if groupPart != "" {
		if n, err := strconv.ParseInt(groupPart, 10, 64); err == nil {
			u.gid = n
		}
	}
	if runAsGroup != nil {
		u.gid = *runAsGroup
	}
	if nonRoot != nil && *nonRoot {
		if runAsUser != nil && *runAsUser == 0 {
			return u, configError{fmt.Sprintf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podName, c.Name)}
		}
		if !numeric {
			return u, configError{fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", userPart, podName, c.Name)}
		}
		if u.uid == 0 {
			return u, configError{fmt.Sprintf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podName, c.Name)}
		}
	}
	if !numeric {
		// Only numeric users in the images this agent runs (no /etc/passwd lookup).
		return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
	}
	return u, nil
}

// containerArgv merges the image's entrypoint and cmd with the container's
// command and args (expanded already), as Kubernetes defines: a command
// replaces both; args alone replace cmd.
func containerArgv(img imageConfig, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, img.Entrypoint...), args...)
	default:
		return append(append([]string{}, img.Entrypoint...), img.Cmd...)
	}
}

// containerEnvList is the image's env with the container's on top, sorted
// for stable output, PATH first when the image sets one.
func containerEnvList(img imageConfig, env map[string]string) []string {
	m := map[string]string{}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for k, v := range env {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// bindMount is a host path mounted into the container.
type bindMount struct {
	host, ctr string
	readOnly  bool
}

// runcSpec is the OCI runtime config of one container instance.
func runcSpec(rootfs string, readOnlyRoot bool, hostname string, u containerUser, argv, env []string, cwd string, binds []bindMount, dropAll bool) map[string]any {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	if dropAll {
		caps = []string{}
	}
	mounts := []map[string]any{
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": []string{"nosuid", "noexec", "nodev"}},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
	}
	for _, b := range binds {
		opts := []string{"rbind", "rprivate"}
		if b.readOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, map[string]any{"destination": b.ctr, "type": "bind", "source": b.host, "options": opts})
	}
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal":        false,
			"user":            map[string]any{"uid": u.uid, "gid": u.gid},
			"args":            argv,
			"env":             env,
			"cwd":             cwd,
			"capabilities":    map[string]any{"bounding": caps, "effective": caps, "permitted": caps},
			"noNewPrivileges": true,
		},
		"root":     map[string]any{"path": rootfs, "readonly": readOnlyRoot},
		"hostname": hostname,
		"mounts":   mounts,
		"linux": map[string]any{
			// No network namespace: the host's, like hostNetwork pods.
			"namespaces":    []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
			"resources":     map[string]any{"devices": []map[string]any{{"allow": false, "access": "rwm"}}},
			"maskedPaths":   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// runcContainer is one prepared instance: its bundle and id.
type runcContainer struct {
	id, bundle, runcLog string
	argv                []string
	image               *ociImage
}

// prepareRunc pulls the image and writes the bundle of instance attempt of
// c. The error is a configError for CreateContainerConfigError, any other
// for CreateContainerError.
func (r *podRun) prepareRunc(c *ctr, env map[string]string, attempt int, termFile, hostsFile string) (*runcContainer, error) {
	img, err := r.p.store.pull(c.spec.Image)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", c.spec.Image, err)
	}
	r.mu.Lock()
	podName := r.meta.Name
	r.mu.Unlock()
	u, err := resolveUser(&r.spec, c.spec, img.config.User, podName)
	if err != nil {
		return nil, err
	}
	argv := containerArgv(img.config, expandAll(c.spec.Command, env), expandAll(c.spec.Args, env))
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command specified")
	}
	cwd := c.spec.WorkingDir
	if cwd == "" {
		cwd = img.config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	sc := c.spec.SecurityContext
	readOnly := sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	dropAll := false
	if sc != nil && sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			dropAll = dropAll || d == "ALL"
		}
	}
	id := fmt.Sprintf("%s-%s-%d", r.uid, c.spec.Name, attempt)
	bundle := filepath.Join(r.dir, "runc", fmt.Sprintf("%s.%d", c.spec.Name, attempt))
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return nil, err
	}
	rootfs := img.rootfs
	if !readOnly {
		// A writable root of its own, so that writes stay in this instance.
		rootfs = filepath.Join(bundle, "rootfs")
		if out, err := exec.Command("cp", "-a", img.rootfs+"/.", rootfs+"/").CombinedOutput(); err != nil {
			_ = os.MkdirAll(rootfs, 0o755)
			if out, err = exec.Command("cp", "-a", img.rootfs+"/.", rootfs+"/").CombinedOutput(); err != nil {
				return nil, fmt.Errorf("copy rootfs: %v: %s", err, out)
			}
		}
	}
	var binds []bindMount
	readOnlyMounts := map[string]bool{}
	for _, vm := range c.spec.VolumeMounts {
		readOnlyMounts[vm.MountPath] = vm.ReadOnly
	}
	for _, m := range r.mountsFor(c) {
		binds = append(binds, bindMount{host: m.hostPath, ctr: m.ctrPath, readOnly: readOnlyMounts[m.ctrPath]})
	}
	if tp := c.spec.TerminationMessagePath; tp != "" {
		binds = append(binds, bindMount{host: termFile, ctr: tp})
	}
	binds = append(binds, bindMount{host: hostsFile, ctr: "/etc/hosts", readOnly: true})
	// Shorter destinations first, so that a mount below another one wins.
	sort.SliceStable(binds, func(i, j int) bool { return len(binds[i].ctr) < len(binds[j].ctr) })
	spec := runcSpec(rootfs, readOnly, podName, u, argv, containerEnvList(img.config, env), cwd, binds, dropAll)
	b, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		return nil, err
	}
	return &runcContainer{id: id, bundle: bundle, runcLog: filepath.Join(bundle, "runc.log"), argv: argv, image: img}, nil
}

// runcCmd is runc with this agent's state directory.
func (p *provider) runcCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, p.cfg.runc, append([]string{"--root", filepath.Join(p.cfg.workDir, ".runc")}, args...)...)
}

// start runs "runc run" for rc in the foreground (the container's stdio is
// the log file); it returns the started command.
func (r *podRun) startRunc(rc *runcContainer, logf *os.File) (*exec.Cmd, error) {
	cmd := exec.Command(r.p.cfg.runc, "--root", filepath.Join(r.p.cfg.workDir, ".runc"), "--log", rc.runcLog, "--log-format", "json",
		"run", "--bundle", rc.bundle, rc.id)
	if logf != nil {
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, cmd.Start()
}

// runcStartError returns runc's error message when the container's process
// could not be started ("exec: \"x\": executable file not found in $PATH"),
// read from runc's own log; "" when the process ran.
func runcStartError(logFile string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msg string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}

// killRunc signals the container's processes through runc (signalling
// "runc run" itself would leave the container running when it is SIGKILLed).
func (p *provider) killRunc(id string, sig syscall.Signal) {
	_ = p.runcCmd(context.Background(), "kill", "--all", id, strconv.Itoa(int(sig))).Run()
}

func (p *provider) deleteRunc(id string) {
	_ = p.runcCmd(context.Background(), "delete", "--force", id).Run()
}

// hostsFile writes the pod's /etc/hosts (localhost and the pod's name on
// loopback), as the kubelet manages one per pod.
func (r *podRun) hostsFile() (string, error) {
	r.mu.Lock()
	name := r.meta.Name
	r.mu.Unlock()
	p := filepath.Join(r.dir, "etc-hosts")
	body := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t%s\n", name)
	return p, os.WriteFile(p, []byte(body), 0o644)
}

// runOnceRunc is runOnce for a container whose image is in the store.
func (r *podRun) runOnceRunc(c *ctr, env map[string]string, stop <-chan struct{}, grace func() time.Duration) (code int, ran bool) {
	// What the kubelet checks before asking the runtime: the image (pulled
	// and unpacked here) and runAsNonRoot against the image's user.
	var img *ociImage
	for {
		var err error
		img, err = r.p.store.pull(c.spec.Image)
		if err != nil {
			r.setWaiting(c, "ErrImagePull", err.Error())
			r.event(corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.spec.Image, err))
			<-stop
			return -1, false
		}
		r.mu.Lock()
		podName := r.meta.Name
		r.mu.Unlock()
		if _, err = resolveUser(&r.spec, c.spec, img.config.User, podName); err == nil {
			break
		}
		reason := "CreateContainerError"
		if _, ok := err.(configError); ok {
			reason = "CreateContainerConfigError"
		}
		r.setWaiting(c, reason, err.Error())
		select {
		case <-stop:
			return -1, false
		case <-time.After(time.Second):
		}
	}

	r.mu.Lock()
	attempt := c.attempts
	c.attempts++
	if attempt > 0 {
		c.restarts++
	}
	r.mu.Unlock()

	termDir := filepath.Join(r.dir, "termination")
	_ = os.MkdirAll(termDir, 0o777)
	termFile := filepath.Join(termDir, fmt.Sprintf("%s.%d", c.spec.Name, attempt))
	if f, err := os.OpenFile(termFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666); err == nil {
		f.Close()
		_ = os.Chmod(termFile, 0o666) // writable by the container's user, whatever the umask
	}
	hosts, err := r.hostsFile()
	var rc *runcContainer
	if err == nil {
		rc, err = r.prepareRunc(c, env, attempt, termFile, hosts)
	}
	if err != nil {
		r.setWaiting(c, "CreateContainerError", err.Error())
		<-stop
		return -1, false
	}

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
	containerID := "runc://" + rc.id
	cmd, err := r.startRunc(rc, logf)
	if err != nil {
		closeLog()
		r.setTerminated(c, 128, "StartError", fmt.Sprintf("failed to start container %q: %v", c.spec.Name, err), start, containerID)
		return 128, true
	}
	in := &instance{pid: cmd.Process.Pid, exited: make(chan struct{}), signal: func(sig syscall.Signal) { r.p.killRunc(rc.id, sig) }}
	pidFile := filepath.Join(r.dir, "pids", fmt.Sprintf("%s.%d", c.spec.Name, attempt))
	_ = os.MkdirAll(filepath.Dir(pidFile), 0o755)
	_ = os.WriteFile(pidFile, []byte(fmt.Sprint(in.pid)), 0o644)

	r.mu.Lock()
	c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}
	c.containerID, c.running, c.waitReason = containerID, true, ""
	c.imageID = c.spec.Image + "@" + rc.image.digest
	c.env, c.dir, c.mounts, c.runcID = env, "/", nil, rc.id
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
	r.p.deleteRunc(rc.id)
	_ = os.Remove(pidFile)
	closeLog()
	r.mu.Lock()
	c.runcID = ""
	r.mu.Unlock()

	code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code != 0 {
		if msg := runcStartError(rc.runcLog); msg != "" {
			// The runtime could not start the process (missing executable,
			// unreadable file): what the kubelet reports as StartError.
			r.setTerminated(c, 128, "StartError", msg, start, containerID)
			return 128, true
		}
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	r.setTerminated(c, code, reason, terminationMessage(c.spec, termFile, logPath, code), start, containerID)
	return code, true
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotations the node agent reads and writes.
const (
	// annPortEnv names extra env vars (comma-separated) that get a per-pod port, besides --port-env.
	annPortEnv = "nodeagent.shiplock.test/port-env"
	// annPorts is written by the agent: the ports it assigned, "NAME=PORT[,NAME=PORT]".
	annPorts = "nodeagent.shiplock.test/ports"
)

// mount maps a path inside the container to a path on the host.
type mount struct{ ctrPath, hostPath string }

// sortMounts puts longer container paths first, so the most specific mount wins.
func sortMounts(ms []mount) {
	sort.SliceStable(ms, func(i, j int) bool { return len(ms[i].ctrPath) > len(ms[j].ctrPath) })
}

// rewriteValue maps a container path (a mount path or a path below it) to the
// host path; other strings come back unchanged.
func rewriteValue(s string, ms []mount) string {
	for _, m := range ms {
		if m.ctrPath == "" || m.ctrPath == "/" {
			continue
		}
		if s == m.ctrPath {
			return m.hostPath
		}
		if rest, ok := strings.CutPrefix(s, strings.TrimSuffix(m.ctrPath, "/")+"/"); ok {
			return filepath.Join(m.hostPath, rest)
		}
	}
	return s
}

// rewriteArgs applies rewriteValue to each argument, and to the value of
// arguments of the form NAME=VALUE (--dir=/migrations).
func rewriteArgs(args []string, ms []mount) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = rewriteValue(a, ms)
		if out[i] == a {
			if k, v, ok := strings.Cut(a, "="); ok {
				if nv := rewriteValue(v, ms); nv != v {
					out[i] = k + "=" + nv
				}
			}
		}
	}
	return out
}

// rewriteArgs maps paths in a command run in container c (exec).
func (r *podRun) rewriteArgs(c *ctr, args []string) []string {
	r.mu.Lock()
	ms := c.mounts
	r.mu.Unlock()
	return rewriteArgs(args, ms)
}

// mountsFor lists c's volume mounts as host paths.
func (r *podRun) mountsFor(c *ctr) []mount {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ms []mount
	for _, vm := range c.spec.VolumeMounts {
		host, ok := r.volumes[vm.Name]
		if !ok {
			continue
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, filepath.Clean("/"+vm.SubPath))
			if _, err := os.Stat(host); os.IsNotExist(err) {
				_ = os.MkdirAll(host, 0o777)
			}
		}
		ms = append(ms, mount{ctrPath: vm.MountPath, hostPath: host})
	}
	return ms
}

// setupVolumes creates the pod's volumes under <pod dir>/volumes/<name>:
// emptyDir (a directory), configMap, secret, downwardAPI and projected
// (files written once, at pod start; projected service account tokens are
// not written), hostPath (the host path itself). Other types get an empty
// directory. A missing non-optional ConfigMap or Secret is an error (the
// pod stays ContainerCreating and the agent retries).
func (r *podRun) setupVolumes() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range r.spec.Volumes {
		r.mu.Lock()
		_, done := r.volumes[v.Name]
		r.mu.Unlock()
		if done {
			continue
		}
		dir := filepath.Join(r.dir, "volumes", v.Name)
		if v.HostPath != nil {
			dir = v.HostPath.Path
			if t := v.HostPath.Type; t != nil && *t == corev1.HostPathFileOrCreate {
				_ = os.MkdirAll(filepath.Dir(dir), 0o755)
				if f, err := os.OpenFile(dir, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					f.Close()
				}
			} else if t != nil && *t == corev1.HostPathDirectoryOrCreate {
				_ = os.MkdirAll(dir, 0o755)
			}
		} else {
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
			var err error
			switch {
			case v.EmptyDir != nil:
			case v.ConfigMap != nil:
				err = r.writeConfigMap(ctx, dir, &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference,
					Items: v.ConfigMap.Items, Optional: v.ConfigMap.Optional}, v.ConfigMap.DefaultMode)
			case v.Secret != nil:
				err = r.writeSecret(ctx, dir, &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName},
					Items: v.Secret.Items, Optional: v.Secret.Optional}, v.Secret.DefaultMode)
			case v.DownwardAPI != nil:
				err = r.writeDownwardAPI(dir, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
			case v.Projected != nil:
				for _, src := range v.Projected.Sources {
					switch {
					case src.ConfigMap != nil:
						err = r.writeConfigMap(ctx, dir, src.ConfigMap, v.Projected.DefaultMode)
					case src.Secret != nil:
						err = r.writeSecret(ctx, dir, src.Secret, v.Projected.DefaultMode)
					case src.DownwardAPI != nil:
						err = r.writeDownwardAPI(dir, src.DownwardAPI.Items, v.Projected.DefaultMode)
					}
					if err != nil {
						break
					}
				}
			default:
				log.L.Warnf("nodeagent: pod %s: volume %s: type not supported, using an empty directory", r.key(), v.Name)
			}
			if err != nil {
				return fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", v.Name, err)
			}
		}
		r.mu.Lock()
		r.volumes[v.Name] = dir
		r.mu.Unlock()
	}
	return nil
}

func (r *podRun) writeConfigMap(ctx context.Context, dir string, ref *corev1.ConfigMapProjection, mode *int32) error {
	cm, err := r.p.client.CoreV1().ConfigMaps(r.meta.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && ref.Optional != nil && *ref.Optional {
			return nil
		}
		return notFound("configmap", ref.Name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeKeys(dir, data, ref.Items, mode)
}

func (r *podRun) writeSecret(ctx context.Context, dir string, ref *corev1.SecretProjection, mode *int32) error {
	s, err := r.p.client.CoreV1().Secrets(r.meta.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && ref.Optional != nil && *ref.Optional {
			return nil
		}
		return notFound("secret", ref.Name, err)
	}
	return writeKeys(dir, s.Data, ref.Items, mode)
}

func (r *podRun) writeDownwardAPI(dir string, items []corev1.DownwardAPIVolumeFile, mode *int32) error {
	for _, it := range items {
		if it.FieldRef == nil {
			continue // resourceFieldRef files are not written
		}
		v, err := r.fieldValue(it.FieldRef.FieldPath)
		if err != nil {
			return err
		}
		m := mode
		if it.Mode != nil {
			m = it.Mode
		}
		if err := writeFile(filepath.Join(dir, it.Path), []byte(v), m); err != nil {
			return err
		}
	}
	return nil
}

// writeKeys writes data as files: every key, or only items (key -> path).
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32) error {
	if len(items) == 0 {
		for k, v := range data {
			if err := writeFile(filepath.Join(dir, k), v, mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("configmap or secret references non-existent key %q", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = it.Mode
		}
		if err := writeFile(filepath.Join(dir, filepath.Clean("/"+it.Path)), v, m); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode *int32) error {
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode) & 0o777
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}

// ---------------------------------------------------------------------------
// per-pod ports

// portEnvNames lists the env vars that get a per-pod port in this pod.
func (r *podRun) portEnvNames() []string {
	names := append([]string{}, r.p.cfg.portEnv...)
	r.mu.Lock()
	extra := r.meta.Annotations[annPortEnv]
	r.mu.Unlock()
	for _, n := range strings.Split(extra, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// assignPorts replaces the value P of each port env var in env with the
// port allocated to this pod for P (allocating it on first use), so that two
// pods on the shared 127.0.0.1 never listen on the same port. All containers
// of a pod see the same port for the same P. Probes aimed at port P are sent
// to the allocated port (see remapPort). New allocations are published in
// the pod annotation nodeagent.shiplock.test/ports.
func (r *podRun) assignPorts(_ *ctr, env map[string]string) error {
	added := false
	for _, name := range r.portEnvNames() {
		v, ok := env[name]
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			continue // not a port number
		}
		key := name + "=" + strings.TrimSpace(v)
		r.mu.Lock()
		port, ok := r.ports[key]
		r.mu.Unlock()
		if !ok {
			var err error
			if port, err = r.p.allocPort(string(r.uid)); err != nil {
				return err
			}
			r.mu.Lock()
			r.ports[key] = port
			r.mu.Unlock()
			added = true
		}
		env[name] = strconv.Itoa(port)
	}
	if added {
		r.publishPorts()
	}
	return nil
}

// remapPort returns the port allocated for original port p, or p.
func (r *podRun) remapPort(p int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, port := range r.ports {
		if _, orig, _ := strings.Cut(key, "="); orig == strconv.Itoa(p) {
			return port
		}
	}
	return p
}

// publishPorts writes the allocations to the pod annotation (best effort).
func (r *podRun) publishPorts() {
	r.mu.Lock()
	byName := map[string]int{}
	for key, port := range r.ports {
		name, _, _ := strings.Cut(key, "=")
		byName[name] = port
	}
	r.mu.Unlock()
	var parts []string
	for name, port := range byName {
		parts = append(parts, fmt.Sprintf("%s=%d", name, port))
	}
	sort.Strings(parts)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annPorts: strings.Join(parts, ",")}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.p.client.CoreV1().Pods(r.meta.Namespace).Patch(ctx, r.meta.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		log.L.Warnf("nodeagent: pod %s: annotate ports: %v", r.key(), err)
	}
}

// ---------------------------------------------------------------------------
// termination messages

// Kubelet limits (pkg/kubelet/container/runtime.go).
const (
	maxTerminationMessage         = 4 * 1024 // bytes read from the end of the file
	maxTerminationMessageLogBytes = 2 * 1024 // FallbackToLogsOnError: bytes ...
	maxTerminationMessageLogLines = 80       // ... from at most this many last log lines
)

// terminationMessage is what the kubelet puts in state.terminated.message:
// the last 4 KiB of the termination message file; with
// FallbackToLogsOnError, a failed container that wrote nothing gets the last
// 80 lines (at most 2 KiB) of its log instead.
func terminationMessage(c *corev1.Container, termFile, logPath string, code int) string {
	fallback := c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && code != 0
	if c.TerminationMessagePath != "" {
		data, err := readTail(termFile, maxTerminationMessage)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Sprintf("Error on reading termination log %s: %v", termFile, err)
		}
		if len(data) > 0 {
			return string(data)
		}
	}
	if !fallback {
		return ""
	}
	data, err := readTail(logPath, 1<<20)
	if err != nil {
		return fmt.Sprintf("Error on reading termination message from logs: %v", err)
	}
	return string(lastLines(data, maxTerminationMessageLogLines, maxTerminationMessageLogBytes))
}

// readTail reads at most the last n bytes of a file.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

// lastLines keeps the last maxLines lines of data, then the last maxBytes bytes of those.
func lastLines(data []byte, maxLines, maxBytes int) []byte {
	off := len(data)
	if off > 0 && data[off-1] == '\n' {
		off--
	}
	for n := 0; n < maxLines; n++ {
		i := bytes.LastIndexByte(data[:off], '\n')
		if i < 0 {
			off = 0
			break
		}
		off = i
	}
	if off > 0 {
		off++
	}
	data = data[off:]
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	return data
}

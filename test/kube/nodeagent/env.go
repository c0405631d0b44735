package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerEnv resolves c's environment the way the kubelet does at each
// container start (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables):
// envFrom sources in order, then env in order with $(VAR) expansion, values
// from ConfigMaps, Secrets, the downward API (fieldRef, resourceFieldRef),
// and the KUBERNETES_SERVICE_* variables. A missing non-optional ConfigMap,
// Secret or key is an error: the container waits in
// CreateContainerConfigError and is retried.
//
// The process also gets PATH (the host's), HOME (the pod directory),
// HOSTNAME (the pod name) and the --pass-env variables, unless env sets them.
func (r *podRun) containerEnv(c *ctr) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc := r.p.serviceEnv(ctx)
	tmp := map[string]string{}
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	ns := r.meta.Namespace

	getCM := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := r.p.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cms[name] = cm
		return cm, nil
	}
	getSecret := func(name string) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := r.p.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}

	for _, from := range c.spec.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := getCM(from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					continue
				}
				return nil, notFound("configmap", from.ConfigMapRef.Name, err)
			}
			for k, v := range cm.Data {
				tmp[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, err := getSecret(from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && from.SecretRef.Optional != nil && *from.SecretRef.Optional {
					continue
				}
				return nil, notFound("secret", from.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				tmp[from.Prefix+k] = string(v)
			}
		}
	}

	mapping := func() map[string]string {
		m := make(map[string]string, len(svc)+len(tmp))
		for k, v := range svc {
			m[k] = v
		}
		for k, v := range tmp {
			m[k] = v
		}
		return m
	}
	for _, e := range c.spec.Env {
		if e.ValueFrom == nil {
			tmp[e.Name] = expandVars(e.Value, mapping())
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := r.fieldValue(vf.FieldRef.FieldPath)
			if err != nil {
				return nil, err
			}
			tmp[e.Name] = v
		case vf.ResourceFieldRef != nil:
			v, err := r.resourceValue(c, vf.ResourceFieldRef)
			if err != nil {
				return nil, err
			}
			tmp[e.Name] = v
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			optional := ref.Optional != nil && *ref.Optional
			cm, err := getCM(ref.Name)
			if err != nil {
				if optional && apierrors.IsNotFound(err) {
					continue
				}
				return nil, notFound("configmap", ref.Name, err)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, ns, ref.Name)
			}
			tmp[e.Name] = v
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s, err := getSecret(ref.Name)
			if err != nil {
				if optional && apierrors.IsNotFound(err) {
					continue
				}
				return nil, notFound("secret", ref.Name, err)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, ns, ref.Name)
			}
			tmp[e.Name] = string(v)
		default:
			return nil, fmt.Errorf("nodeagent: env %s: unsupported valueFrom", e.Name)
		}
	}

	env := map[string]string{"HOME": r.dir, "HOSTNAME": r.meta.Name}
	env["PATH"] = os.Getenv("PATH")
	if env["PATH"] == "" {
		env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, name := range r.p.cfg.passEnv {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = v
		}
	}
	for k, v := range svc {
		env[k] = v
	}
	for k, v := range tmp {
		env[k] = v
	}
	return env, nil
}

// notFound words a lookup error as the kubelet does: `secret "x" not found`.
func notFound(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %q not found", kind, name)
	}
	return fmt.Errorf("get %s %q: %w", kind, name, err)
}

// fieldValue resolves a downward API field path.
func (r *podRun) fieldValue(path string) (string, error) {
	r.mu.Lock()
	meta := r.meta.DeepCopy()
	r.mu.Unlock()
	switch path {
	case "metadata.name":
		return meta.Name, nil
	case "metadata.namespace":
		return meta.Namespace, nil
	case "metadata.uid":
		return string(meta.UID), nil
	case "metadata.labels":
		return formatMap(meta.Labels), nil
	case "metadata.annotations":
		return formatMap(meta.Annotations), nil
	case "spec.nodeName":
		return r.spec.NodeName, nil
	case "spec.serviceAccountName":
		return r.spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs":
		return r.p.hostIP, nil
	}
	for _, m := range []struct {
		prefix string
		vals   map[string]string
	}{{"metadata.labels", meta.Labels}, {"metadata.annotations", meta.Annotations}} {
		if rest, ok := strings.CutPrefix(path, m.prefix+"['"); ok {
			if k, ok := strings.CutSuffix(rest, "']"); ok {
				return m.vals[k], nil
			}
		}
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// formatMap formats a label or annotation map as the downward API does.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%v=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resourceValue resolves a resourceFieldRef; limits default to the node's
// allocatable resources, as with the kubelet.
func (r *podRun) resourceValue(c *ctr, ref *corev1.ResourceFieldSelector) (string, error) {
	target := c.spec
	if ref.ContainerName != "" {
		if t := r.container(ref.ContainerName); t != nil {
			target = t.spec
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	var q resource.Quantity
	switch kind {
	case "limits":
		var ok bool
		if q, ok = target.Resources.Limits[corev1.ResourceName(name)]; !ok {
			q = nodeAllocatable()[corev1.ResourceName(name)]
		}
	case "requests":
		q = target.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported container resource: %v", ref.Resource)
	}
	switch corev1.ResourceName(name) {
	case corev1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource: %v", ref.Resource)
}

// serviceEnv returns the KUBERNETES_SERVICE_* variables of the default/kubernetes
// Service, which the kubelet gives every container. (The Service's ClusterIP
// is in 127.96.0.0/16 and nothing listens there: in-cluster clients fail to
// connect rather than to detect the cluster.) Other services' link variables
// are not set.
func (p *provider) serviceEnv(ctx context.Context) map[string]string {
	p.mu.Lock()
	env := p.svcEnv
	p.mu.Unlock()
	if env != nil {
		return env
	}
	svc, err := p.client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP == "" || len(svc.Spec.Ports) == 0 {
		log.L.Warnf("nodeagent: kubernetes service not available yet: %v", err)
		return map[string]string{}
	}
	ip, port := svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))
	addr := "tcp://" + ip + ":" + port
	pfx := "KUBERNETES_PORT_" + port + "_TCP"
	env = map[string]string{
		"KUBERNETES_SERVICE_HOST": ip, "KUBERNETES_SERVICE_PORT": port, "KUBERNETES_SERVICE_PORT_HTTPS": port,
		"KUBERNETES_PORT": addr, pfx: addr, pfx + "_PROTO": "tcp", pfx + "_PORT": port, pfx + "_ADDR": ip,
	}
	p.mu.Lock()
	p.svcEnv = env
	p.mu.Unlock()
	return env
}

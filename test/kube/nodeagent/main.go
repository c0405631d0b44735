// Command nodeagent is shiplock's test node: a stand-in for the kubelet that
// registers one Node with a real (loopback) Kubernetes control plane and runs
// every Pod bound to it as local processes.
//
// It is built on virtual-kubelet (node registration, heartbeats, the pod
// informer, the kubelet HTTPS routes) and adds the pod runtime: init
// containers, native sidecars, regular containers, restart policies with
// back-off, startup/readiness/liveness probes, termination messages, env from
// Secrets, ConfigMaps and the downward API, a few volume types, pod deadlines
// and graceful deletion. Pod status is computed the way the kubelet computes
// it (phase, conditions, container states) and written with UpdateStatus.
//
// An image is mapped to a local binary with --image IMAGE=PATH. See
// test/kube/README.md for what is reproduced and what is not.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/virtual-kubelet/virtual-kubelet/log"
	logruslogger "github.com/virtual-kubelet/virtual-kubelet/log/logrus"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// imageFlag collects repeated --image IMAGE=PATH flags.
type imageFlag map[string]string

func (m imageFlag) String() string { return fmt.Sprint(map[string]string(m)) }

func (m imageFlag) Set(v string) error {
	k, p, ok := strings.Cut(v, "=")
	if !ok || k == "" || p == "" {
		return fmt.Errorf("want IMAGE=PATH, got %q", v)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	m[k] = abs
	return nil
}

// listFlag is a repeatable, comma-separated list flag whose first Set
// replaces the default.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l.vals = append(l.vals, s)
		}
	}
	return nil
}

func main() {
	var cfg config
	images := imageFlag{}
	cfg.images = images
	portEnv := &listFlag{vals: []string{"PORT_NUM"}}
	termEnv := &listFlag{vals: []string{"TERMINATION_MESSAGE_PATH", "SHIPLOCK_TERMINATION_LOG"}}
	passEnv := &listFlag{}
	var portRange string
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the control plane")
	flag.StringVar(&cfg.nodeName, "node-name", "nodeagent", "name of the Node to register")
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:10350", "kubelet HTTPS address (logs, exec); loopback only")
	flag.StringVar(&cfg.certFile, "tls-cert", "", "kubelet serving certificate")
	flag.StringVar(&cfg.keyFile, "tls-key", "", "kubelet serving key")
	flag.StringVar(&cfg.workDir, "work-dir", "/tmp/shiplock-kube/run/nodeagent", "where pod directories (logs, volumes, termination messages) go")
	flag.Var(images, "image", "IMAGE=PATH: run PATH for containers of IMAGE (repeatable; IMAGE may omit the tag)")
	flag.Var(portEnv, "port-env", "env var names that get a per-pod port (repeatable or comma-separated)")
	flag.StringVar(&portRange, "pod-ports", "20000-29999", "range of loopback ports handed out to pods")
	flag.Var(termEnv, "termination-message-env", "env var names set to the container's termination message file")
	flag.Var(passEnv, "pass-env", "host env vars passed to every container (e.g. GOCOVERDIR)")
	flag.DurationVar(&cfg.backoffInitial, "backoff-initial", 500*time.Millisecond, "first restart back-off (the kubelet uses 10s)")
	flag.DurationVar(&cfg.backoffMax, "backoff-max", 8*time.Second, "maximum restart back-off (the kubelet uses 5m)")
	flag.StringVar(&cfg.imageStore, "image-store", "", "OCI image layout whose images (by their ref.name annotation) run under runc; other images run as processes")
	flag.StringVar(&cfg.runc, "runc", "runc", "the runc binary, for --image-store")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()
	cfg.portEnv, cfg.termEnv, cfg.passEnv = portEnv.vals, termEnv.vals, passEnv.vals

	lo, hi, err := parseRange(portRange)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent: --pod-ports:", err)
		os.Exit(2)
	}
	cfg.portLo, cfg.portHi = lo, hi

	lg := logrus.StandardLogger()
	if *verbose {
		lg.SetLevel(logrus.DebugLevel)
	}
	log.L = logruslogger.FromLogrus(logrus.NewEntry(lg))

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

func parseRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("want LOW-HIGH, got %q", s)
	}
	return lo, hi, nil
}

// config is everything the provider needs from the command line.
type config struct {
	kubeconfig, nodeName, listen, certFile, keyFile, workDir string
	images                                                   map[string]string
	portEnv, termEnv, passEnv                                []string
	portLo, portHi                                           int
	backoffInitial, backoffMax                               time.Duration
	imageStore, runc                                         string // OCI layout run under runc; runc binary
}

func run(ctx context.Context, cfg config) error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 100, 200
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(cfg.listen)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("bad --listen port %q", portStr)
	}
	if err := os.MkdirAll(cfg.workDir, 0o755); err != nil {
		return err
	}

	var store *imageStore
	if cfg.imageStore != "" {
		if _, err := exec.LookPath(cfg.runc); err != nil {
			return fmt.Errorf("--image-store needs runc: %w", err)
		}
		if store, err = newImageStore(cfg.imageStore, filepath.Join(cfg.workDir, ".images")); err != nil {
			return err
		}
	}

	mux := http.NewServeMux()
	var prov *provider
	n, err := nodeutil.NewNode(cfg.nodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			configureNode(pc.Node, host, int32(port))
			prov = newProvider(client, cfg, host)
			prov.store = store
			return prov, nil, nil
		},
		nodeutil.WithClient(client),
		func(c *nodeutil.NodeConfig) error {
			c.HTTPListenAddr = cfg.listen
			c.Handler = mux // no authn/authz: loopback-only test endpoint
			c.NumWorkers = 4
			c.InformerResyncPeriod = 30 * time.Second
			// The provider resolves env itself (status.podIP, resourceFieldRef,
			// and CreateContainerConfigError instead of a failed pod).
			c.SkipDownwardAPIResolution = true
			return nil
		},
		nodeutil.AttachProviderRoutes(mux),
		nodeutil.WithTLSConfig(nodeutil.WithKeyPairFromPath(cfg.certFile, cfg.keyFile), func(c *tls.Config) error {
			c.ClientAuth = tls.NoClientCert
			return nil
		}),
	)
	if err != nil {
		return err
	}
	go n.Run(ctx) //nolint:errcheck // n.Err() is checked below
	if err := n.WaitReady(ctx, time.Minute); err != nil {
		return fmt.Errorf("node not ready: %w", err)
	}
	// The TaintNodesByCondition admission plugin puts node.kubernetes.io/not-ready
	// on every new Node; the node-lifecycle controller (not run by the harness)
	// would normally remove it once the Node is Ready.  Remove it ourselves.
	if err := untaint(ctx, client, cfg.nodeName); err != nil {
		return err
	}
	log.G(ctx).Infof("nodeagent: node %s ready, kubelet endpoint https://%s", cfg.nodeName, cfg.listen)
	select {
	case <-ctx.Done():
	case <-n.Done():
		return n.Err()
	}
	prov.stopAll()
	return nil
}

func configureNode(n *corev1.Node, ip string, port int32) {
	n.Labels["kubernetes.io/os"] = "linux"
	n.Labels["kubernetes.io/arch"] = "amd64"
	n.Labels["node-role.kubernetes.io/nodeagent"] = ""
	delete(n.Labels, "kubernetes.io/role")
	n.Status.Capacity = nodeAllocatable()
	n.Status.Allocatable = nodeAllocatable()
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: ip},
		{Type: corev1.NodeHostName, Address: n.Name},
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		OperatingSystem:         "linux",
		Architecture:            "amd64",
		KubeletVersion:          "v1.37.2-nodeagent",
		ContainerRuntimeVersion: "nodeagent://0.1",
	}
	// Conditions other than Ready must be False, or the scheduler and kubectl
	// consider the node under pressure.
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			c.Status = corev1.ConditionFalse
			c.Reason = "NodeAgentOK"
			c.LastHeartbeatTime = metav1.Now()
			c.LastTransitionTime = metav1.Now()
		}
	}
}

// nodeAllocatable is what the Node advertises; resourceFieldRef falls back to
// it for containers without limits, as the kubelet does.
func nodeAllocatable() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("64"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("500"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

func untaint(ctx context.Context, c kubernetes.Interface, name string) error {
	for range 50 {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var keep []corev1.Taint
		for _, t := range n.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
				keep = append(keep, t)
			}
		}
		if len(keep) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = keep
		if _, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("could not remove not-ready taint from node %s", name)
}

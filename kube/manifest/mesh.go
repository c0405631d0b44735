package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// Annotations and labels of the meshes that shiplock reads or writes.
const (
	// LinkerdInject on a pod template (enabled, ingress or disabled)
	// decides whether Linkerd injects its proxy.
	LinkerdInject = "linkerd.io/inject"
	// LinkerdSkipOutboundPorts lists ports (and ranges) whose outbound
	// traffic bypasses the proxy. An initContainer runs before a classic
	// sidecar proxy has started, yet after its iptables rules redirect the
	// pod's traffic to it: without this, it cannot reach the database.
	LinkerdSkipOutboundPorts = "config.linkerd.io/skip-outbound-ports"
	// LinkerdProxyAdminShutdown enables the proxy's POST /shutdown, which
	// "shiplock up --sidecar-shutdown linkerd" calls so that a Job's pod
	// can complete.
	LinkerdProxyAdminShutdown = "config.linkerd.io/proxy-admin-shutdown"
	// LinkerdNativeSidecar runs the proxy as a Kubernetes native sidecar.
	LinkerdNativeSidecar = "config.beta.linkerd.io/proxy-enable-native-sidecar"

	// IstioInject (label, or the older annotation) "true" or "false"
	// decides whether Istio injects its proxy; so does the label IstioRev.
	IstioInject = "sidecar.istio.io/inject"
	// IstioRev selects an Istio revision, which injects.
	IstioRev = "istio.io/rev"
	// IstioExcludeOutboundPorts is Istio's counterpart of
	// LinkerdSkipOutboundPorts.
	IstioExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	// IstioNativeSidecar runs istio-proxy as a Kubernetes native sidecar.
	IstioNativeSidecar = "sidecar.istio.io/nativeSidecar"
)

// detectMesh reads a pod template's own mesh settings. It returns MeshAuto
// when the template says nothing, and MeshNone when it opts out.
func detectMesh(annotations, labels map[string]string) (Mesh, error) {
	linkerd := annotations[LinkerdInject]
	istio, ok := labels[IstioInject]
	if !ok {
		istio = annotations[IstioInject]
	}
	if istio == "" && labels[IstioRev] != "" {
		istio = "true"
	}
	onL := linkerd == "enabled" || linkerd == "ingress"
	onI := istio == "true"
	switch {
	case onL && onI:
		return "", fmt.Errorf("the pod template asks for both Linkerd (%s) and Istio (%s) injection", LinkerdInject, IstioInject)
	case onL:
		return MeshLinkerd, nil
	case onI:
		return MeshIstio, nil
	case linkerd == "disabled" || istio == "false":
		return MeshNone, nil
	}
	return MeshAuto, nil
}

// resolveMesh combines what the caller says with what the template says:
// a template's own opt-in or opt-out wins over Options.Mesh, except that
// MeshNone from the caller turns everything off.
func resolveMesh(asked, template Mesh) Mesh {
	switch {
	case asked == MeshNone:
		return MeshNone
	case template != MeshAuto:
		return template
	}
	return asked
}

func meshed(m Mesh) bool { return m == MeshLinkerd || m == MeshIstio }

// excludeAnnotation is the annotation that lets a port bypass m's proxy.
func excludeAnnotation(m Mesh) string {
	if m == MeshIstio {
		return IstioExcludeOutboundPorts
	}
	return LinkerdSkipOutboundPorts
}

// addPort adds port to a comma-separated list of ports and ranges
// ("25,587,4000-5000"), unless the list already covers it. The list is
// otherwise kept as written.
func addPort(list string, port int32) string {
	if strings.TrimSpace(list) == "" {
		return strconv.Itoa(int(port))
	}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		l, err1 := strconv.Atoi(strings.TrimSpace(lo))
		h, err2 := l, error(nil)
		if isRange {
			h, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 == nil && err2 == nil && l <= int(port) && int(port) <= h {
			return list
		}
	}
	return strings.TrimRight(strings.TrimSpace(list), ",") + "," + strconv.Itoa(int(port))
}

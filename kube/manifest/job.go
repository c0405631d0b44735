package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shiplock/shiplock/exitcode"
)

// Labels on every Job (and its pods) that Job renders.
const (
	LabelName      = "app.kubernetes.io/name"       // "shiplock"
	LabelComponent = "app.kubernetes.io/component"  // "migration"
	LabelManagedBy = "app.kubernetes.io/managed-by" // "shiplock"
	// LabelDatabase is a hash of the database's identity (host, port and
	// name, or the Secret key holding its URL; never the credentials), so
	// that a runner can find a Job already running for the same database.
	LabelDatabase = "shiplock.dev/database"
	// LabelCommand is the shiplock command the Job runs (up, down, ...).
	LabelCommand = "shiplock.dev/command"
)

// Job defaults.
const (
	DefaultNamePrefix              = "shiplock"
	DefaultBackoffLimit            = 2
	DefaultActiveDeadlineSeconds   = 3600
	DefaultTTLSecondsAfterFinished = 86400
)

// PermanentExitCodes returns shiplock's exit codes that retrying cannot fix
// (package exitcode's Permanent kind): a rendered Job fails at once on
// them, and retries the others (database not available, lock not
// acquired, stopped) up to its backoffLimit.
func PermanentExitCodes() []int32 {
	var out []int32
	for _, c := range exitcode.Of(exitcode.Permanent) {
		out = append(out, int32(c))
	}
	return out
}

// JobOptions describe a Job that runs shiplock once.
type JobOptions struct {
	Options
	// Namespace is the Job's namespace; empty leaves it to kubectl. A
	// placeholder ($NAMESPACE) is kept verbatim for envsubst.
	Namespace string
	// NamePrefix starts the Job's name (default "shiplock"), which is
	// NamePrefix-COMMAND-HASH, HASH covering everything the Job runs.
	NamePrefix string
	// NativeSidecar says the mesh's proxy runs as a Kubernetes native
	// sidecar (an init container with restartPolicy: Always), which the
	// kubelet stops once shiplock exits: the Job asks the mesh for one
	// (Linkerd's or Istio's annotation) and shiplock shuts nothing down.
	// It needs Mesh linkerd or istio and Kubernetes 1.29 or later.
	NativeSidecar bool
	// BackoffLimit is how many retryable failures (exit codes other than
	// PermanentExitCodes, a lost node) the Job retries (default 2; set it with a pointer to 0 for none).
	BackoffLimit *int32
	// ActiveDeadlineSeconds bounds the whole Job (default 3600).
	ActiveDeadlineSeconds *int64
	// TTLSecondsAfterFinished deletes the finished Job and its pods
	// (default 86400).
	TTLSecondsAfterFinished *int32
	// ServiceAccountName runs the pod as this ServiceAccount; empty is the
	// namespace's default. The token is never mounted: shiplock needs no
	// Kubernetes API.
	ServiceAccountName string
	// Hook makes the Job a deployment tool's hook; see [Hook].
	Hook Hook
	// SyncWave orders the Job among the hooks: Argo CD's sync wave, or
	// Helm's hook weight (default 0). A Secret the Job reads that is
	// itself a hook needs a lower one.
	SyncWave int
}

// Hook is the deployment tool whose hook a Job is.
type Hook string

const (
	// HookNone, the zero value, renders no hook annotations.
	HookNone Hook = ""
	// HookHelm is a Helm pre-install and pre-upgrade hook that Helm deletes
	// (by name) just before the next release creates it again.
	HookHelm Hook = "helm"
	// HookArgoCD is an Argo CD PreSync hook (argocd.argoproj.io/hook),
	// deleted with BeforeHookCreation, in wave SyncWave. Argo CD runs it on
	// every sync, before the Application's own resources exist.
	HookArgoCD Hook = "argocd"
)

// Hook annotations.
const (
	HelmHook                 = "helm.sh/hook"
	HelmHookWeight           = "helm.sh/hook-weight"
	HelmHookDeletePolicy     = "helm.sh/hook-delete-policy"
	ArgoCDHook               = "argocd.argoproj.io/hook"
	ArgoCDHookDeletePolicy   = "argocd.argoproj.io/hook-delete-policy"
	ArgoCDSyncWave           = "argocd.argoproj.io/sync-wave"
	helmHookEvents           = "pre-install,pre-upgrade"
	helmBeforeHookCreation   = "before-hook-creation"
	argoCDBeforeHookCreation = "BeforeHookCreation"
)

// ParseHook parses "none" (or ""), "helm" or "argocd".
func ParseHook(s string) (Hook, error) {
	switch s {
	case "", "none":
		return HookNone, nil
	case string(HookHelm), string(HookArgoCD):
		return Hook(s), nil
	}
	return "", fmt.Errorf("manifest: unknown hook %q: want none, helm or argocd", s)
}

// hookAnnotations are the Job's own annotations for h.
func hookAnnotations(h Hook, wave int) map[string]string {
	switch h {
	case HookHelm:
		return map[string]string{HelmHook: helmHookEvents, HelmHookWeight: strconv.Itoa(wave), HelmHookDeletePolicy: helmBeforeHookCreation}
	case HookArgoCD:
		return map[string]string{ArgoCDHook: "PreSync", ArgoCDHookDeletePolicy: argoCDBeforeHookCreation, ArgoCDSyncWave: strconv.Itoa(wave)}
	}
	return nil
}

// Job renders a Job that runs shiplock with opts.Args.
//
// Its name is derived from everything the Job runs (image, arguments,
// database, settings), so applying the same release again changes nothing,
// and any change gives a new Job instead of an "field is immutable" error.
// With a placeholder Tag the name ends in "-$TAG", so the tag it stands for
// must be valid in a name (lower-case letters, digits, '-' and '.').
// It retries only what can heal: a podFailurePolicy fails the Job at once on
// PermanentExitCodes from the migrate container and ignores pod
// disruptions (a drained node), which do not count against BackoffLimit.
//
// With Mesh linkerd or istio, the database port bypasses the proxy, and
// shiplock waits for the proxy to be ready and shuts it down when it is
// done (--wait-proxy, --sidecar-shutdown), unless the proxy is a native
// sidecar (NativeSidecar), which the kubelet stops. Errors are *FieldError.
func Job(opts JobOptions) (*batchv1.Job, error) {
	o := &opts.Options
	if err := o.validate(); err != nil {
		return nil, err
	}
	image, err := imageRef(o.Image, o.Tag)
	if err != nil {
		return nil, err
	}
	if len(o.Args) == 0 {
		return nil, fieldErr("Args", "are required: the shiplock command to run, such as up, or down --to VERSION")
	}
	verb := o.Args[0]
	if strings.HasPrefix(verb, "-") {
		return nil, fieldErr("Args", "must start with the shiplock command (up, down, redo, ...), not the flag %q", verb)
	}
	if o.Mesh == MeshAuto {
		o.Mesh = MeshNone
	}
	if opts.NativeSidecar && !meshed(o.Mesh) {
		return nil, &FieldError{Field: "NativeSidecar", Msg: "needs a mesh:", Other: "Mesh"}
	}
	prefix := opts.NamePrefix
	if prefix == "" {
		prefix = DefaultNamePrefix
	}
	if errs := validation.IsDNS1123Label(prefix); len(errs) > 0 || len(prefix) > 40 {
		return nil, fieldErr("NamePrefix", "%q: want at most 40 lower-case letters, digits and '-', starting and ending with a letter or digit", prefix)
	}
	if opts.Namespace != "" && !IsPlaceholder(opts.Namespace) {
		if errs := validation.IsDNS1123Label(opts.Namespace); len(errs) > 0 {
			return nil, fieldErr("Namespace", "%q is not a namespace: %s", opts.Namespace, errs[0])
		}
	}
	if opts.ServiceAccountName != "" {
		if errs := validation.IsDNS1123Subdomain(opts.ServiceAccountName); len(errs) > 0 {
			return nil, fieldErr("ServiceAccountName", "%q is not a ServiceAccount name: %s", opts.ServiceAccountName, errs[0])
		}
	}
	switch opts.Hook {
	case HookNone:
		if opts.SyncWave != 0 {
			return nil, &FieldError{Field: "SyncWave", Msg: "needs a hook:", Other: "Hook"}
		}
	case HookHelm, HookArgoCD:
	default:
		return nil, fieldErr("Hook", "%q: want helm, argocd or empty", opts.Hook)
	}
	backoff := int32(DefaultBackoffLimit)
	if opts.BackoffLimit != nil {
		if backoff = *opts.BackoffLimit; backoff < 0 {
			return nil, fieldErr("BackoffLimit", "%d must not be negative", backoff)
		}
	}
	deadline := int64(DefaultActiveDeadlineSeconds)
	if opts.ActiveDeadlineSeconds != nil {
		if deadline = *opts.ActiveDeadlineSeconds; deadline <= 0 {
			return nil, fieldErr("ActiveDeadlineSeconds", "%d must be positive", deadline)
		}
	}
	ttl := int32(DefaultTTLSecondsAfterFinished)
	if opts.TTLSecondsAfterFinished != nil {
		if ttl = *opts.TTLSecondsAfterFinished; ttl < 0 {
			return nil, fieldErr("TTLSecondsAfterFinished", "%d must not be negative", ttl)
		}
	}

	annotations, args, err := mainMesh(o.Mesh, opts.NativeSidecar, o.Database.port(), o.Args)
	if err != nil {
		return nil, err
	}

	labels := map[string]string{
		LabelName:      "shiplock",
		LabelComponent: "migration",
		LabelManagedBy: "shiplock",
		LabelDatabase:  shortHash(o.Database.identity(), 16),
		LabelCommand:   dnsLabel(verb),
	}
	c := container(o, JobContainerName, image, args, o.Database.Credentials)
	no := false
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   opts.Namespace,
			Labels:      labels,
			Annotations: hookAnnotations(opts.Hook, opts.SyncWave),
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				// First: a pod disrupted (node drain, preemption) may exit
				// with any code, and is worth running again.
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
				}},
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: &c.Name,
					Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
					Values:        PermanentExitCodes(),
				}},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: copyMap(labels), Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           opts.ServiceAccountName,
					AutomountServiceAccountToken: &no,
					Containers:                   []corev1.Container{c},
				},
			},
		},
	}
	job.Name = jobName(prefix, verb, &job.Spec)
	if IsPlaceholder(o.Tag) {
		// The hash covers "$TAG", the same for every release: the tag
		// itself must tell the releases' Jobs apart once envsubst ran.
		job.Name += "-" + o.Tag
	}
	return job, nil
}

// jobName is PREFIX-VERB-HASH: HASH is 8 hex digits of the spec's SHA-256,
// and the whole is a DNS-1123 label of at most 63 characters (a Job's name
// becomes a label value on its pods).
func jobName(prefix, verb string, spec *batchv1.JobSpec) string {
	b, err := json.Marshal(spec)
	if err != nil {
		panic(err) // a typed JobSpec always marshals
	}
	hash := shortHash(string(b), 8)
	base := prefix + "-" + dnsLabel(verb)
	if len(base) > 63-1-len(hash) {
		base = strings.TrimRight(base[:63-1-len(hash)], "-")
	}
	return base + "-" + hash
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// dnsLabel lower-cases s and keeps letters, digits and inner '-'.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 20 {
		out = strings.TrimRight(out[:20], "-")
	}
	if out == "" {
		return "run"
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mainMesh returns the pod annotations and shiplock's arguments for a pod
// whose main container is shiplock's (a Job's). With a mesh, the database
// port bypasses the proxy; a native sidecar (native) is asked for and
// stops by itself; a classic one never exits by itself, so shiplock waits
// for it to be ready (or a quick run would ask it to exit before it
// listens) and asks it to exit when done.
func mainMesh(m Mesh, native bool, port int32, args []string) (map[string]string, []string, error) {
	args = append([]string(nil), args...)
	if !meshed(m) {
		return nil, args, nil
	}
	annotations := map[string]string{excludeAnnotation(m): addPort("", port)}
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	switch {
	case native && m == MeshLinkerd:
		annotations[LinkerdNativeSidecar] = "true"
	case native:
		annotations[IstioNativeSidecar] = "true"
	case !shutdownVerbs[verb]:
		return nil, nil, &FieldError{Field: "Mesh", Msg: `"shiplock ` + verb + `" cannot shut the proxy down, so the Job would never complete (only up, down, redo and repair can): use`, Other: "NativeSidecar"}
	default:
		if m == MeshLinkerd {
			annotations[LinkerdProxyAdminShutdown] = "enabled"
		}
		if !hasFlag(args, "wait-proxy") {
			args = append(args, "--wait-proxy="+string(m))
		}
		if !hasFlag(args, "sidecar-shutdown") {
			args = append(args, "--sidecar-shutdown="+string(m))
		}
	}
	return annotations, args, nil
}

package manifest

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Selector picks workloads by kind and name, as kubectl's KIND/NAME does.
type Selector struct {
	Kind string // a kind of templatePaths ("Deployment")
	Name string
}

func (s Selector) String() string { return s.Kind + "/" + s.Name }

// kindAliases are kubectl's spellings of the workload kinds: lower case,
// plural and short names.
var kindAliases = map[string]string{
	"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
	"sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
	"ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
	"rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
	"job": "Job", "jobs": "Job",
	"cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
	"po": "Pod", "pod": "Pod", "pods": "Pod",
	"podtemplate": "PodTemplate", "podtemplates": "PodTemplate",
}

// ParseSelector parses KIND/NAME, KIND in any of kubectl's spellings
// (deployment, deploy, Deployment, deployments).
func ParseSelector(s string) (Selector, error) {
	kind, name, ok := strings.Cut(s, "/")
	k := kindAliases[strings.ToLower(kind)]
	if !ok || name == "" || k == "" {
		return Selector{}, fmt.Errorf("manifest: selector %q: want KIND/NAME, KIND one of deployment, statefulset, daemonset, replicaset, job, cronjob, pod or podtemplate", s)
	}
	return Selector{Kind: k, Name: name}, nil
}

// Workload is a pod template that Inject matched.
type Workload struct {
	Doc     int    // 1-based position of its document in the stream
	Kind    string // Deployment, CronJob, ...
	Name    string
	Changed bool // false: it already had the same shiplock container
	// Replaced is the container that shiplock's took the place of
	// (InjectOptions.Replace), empty when none.
	Replaced string
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// matches reports whether the options select the object.
func (o *InjectOptions) matches(kind, name string, objLabels map[string]string) bool {
	if o.Name != "" && name != o.Name {
		return false
	}
	if o.labels != nil && !o.labels.Matches(labels.Set(objLabels)) {
		return false
	}
	if len(o.Select) == 0 {
		return true
	}
	for _, s := range o.Select {
		if s.Kind == kind && s.Name == name {
			return true
		}
	}
	return false
}

// placeholderRE is an envsubst reference standing for a whole value:
// $NAME or ${NAME}.
var placeholderRE = regexp.MustCompile(`^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$`)

// IsPlaceholder reports whether s is an envsubst reference ($TAG,
// ${NAMESPACE}) that a template keeps for its pipeline to fill in: the
// options that accept one (Tag, ImagePullPolicy, JobOptions.Namespace)
// render it verbatim instead of validating it.
func IsPlaceholder(s string) bool { return placeholderRE.MatchString(s) }

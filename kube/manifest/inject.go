package manifest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// ErrNoWorkload is returned (wrapped) by Inject when the input has no pod
// template to inject into, or none with the given name.
var ErrNoWorkload = errors.New("manifest: no workload to inject into")

// InjectOptions describe the initContainer that Inject adds.
type InjectOptions struct {
	Options
	// Pattern is what the initContainer runs: "shiplock up" (PatternInit,
	// the default) or "shiplock await" (PatternGate). Options.Args, when
	// set, replace that command.
	Pattern Pattern
	// Gate are the credentials of PatternGate's initContainer: read-only
	// ones suffice for "shiplock await". Zero means Database's own. With
	// Gate.Secret the database's location comes from Database (Host or
	// URL); Gate.URLSecret holds a whole connection string.
	Gate Credentials
	// Name restricts Inject to the workloads of this name; empty means all.
	Name string
	// Replace is the name of an existing initContainer (the old
	// "nc -z && goose up" one, say) that the shiplock initContainer
	// replaces, in its place. It is ignored once the pod template has a
	// container named InitContainerName.
	Replace string
}

// DocError is a document of Inject's input that could not be injected.
type DocError struct {
	Doc  int    // 1-based position in the stream
	Kind string // the object's kind, when known
	Name string // the object's name, when known
	Err  error
}

func (e *DocError) Error() string {
	where := fmt.Sprintf("document %d", e.Doc)
	if e.Kind != "" {
		where += " (" + e.Kind
		if e.Name != "" {
			where += " " + e.Name
		}
		where += ")"
	}
	return "manifest: " + where + ": " + e.Err.Error()
}

func (e *DocError) Unwrap() error { return e.Err }

// templatePaths are the kinds whose pod template Inject edits: the group
// their apiVersion must have, and the path from the object to the template
// (empty: the object is itself a pod).
var templatePaths = map[string]struct {
	group string
	path  []string
}{
	"Deployment":  {"apps", []string{"spec", "template"}},
	"StatefulSet": {"apps", []string{"spec", "template"}},
	"DaemonSet":   {"apps", []string{"spec", "template"}},
	"ReplicaSet":  {"apps", []string{"spec", "template"}},
	"Job":         {"batch", []string{"spec", "template"}},
	"CronJob":     {"batch", []string{"spec", "jobTemplate", "spec", "template"}},
	"PodTemplate": {"", []string{"template"}},
	"Pod":         {"", nil},
}

// InitContainer renders the initContainer that Inject adds. It is the same
// with or without a mesh; only the pod template's annotations differ.
// Errors are *FieldError.
func InitContainer(opts InjectOptions) (corev1.Container, error) {
	if err := opts.validate(); err != nil {
		return corev1.Container{}, err
	}
	image, err := imageRef(opts.Image, opts.Tag)
	if err != nil {
		return corev1.Container{}, err
	}
	return opts.container(image), nil
}

func (o *InjectOptions) validate() error {
	if err := o.Options.validate(); err != nil {
		return err
	}
	switch o.Pattern {
	case "", PatternInit, PatternGate:
	default:
		return fieldErr("Pattern", "%q: want init or gate", o.Pattern)
	}
	if !o.Gate.isZero() {
		if o.Pattern != PatternGate {
			return &FieldError{Field: "Gate", Msg: "is only used by the gate pattern:", Other: "Pattern"}
		}
		if err := o.Gate.validate("Gate"); err != nil {
			return err
		}
		d := &o.Database
		if o.Gate.URLSecret.isZero() && d.Host == "" && d.URL == "" {
			return &FieldError{Field: "Gate.Secret", Msg: "needs the database's host, which is in the migration's Secret URL: give the gate its own URL with", Other: "Gate.URLSecret"}
		}
		if u, err := url.Parse(d.URL); o.Gate.Secret != "" && err == nil && u.User != nil {
			// The URL's user wins over PGUSER: the gate would log in as
			// the migration's user with the gate's password.
			return &FieldError{Field: "Gate.Secret", Msg: "cannot be combined with a URL that names its user:", Other: "Database.URL"}
		}
	}
	if o.Replace != "" && o.Replace == InitContainerName {
		o.Replace = ""
	}
	return nil
}

// container renders the initContainer.
func (o *InjectOptions) container(image string) corev1.Container {
	args := o.Args
	if len(args) == 0 {
		args = []string{"up"}
		if o.Pattern == PatternGate {
			args = []string{"await"}
		}
	}
	// No --wait-proxy and no --sidecar-shutdown (both default to none): a
	// classic sidecar proxy starts only after the initContainers, and a
	// native one is needed by the app afterwards. The database port
	// bypasses the proxy instead (see injectTemplate).
	creds := o.Database.Credentials
	if o.Pattern == PatternGate && !o.Gate.isZero() {
		creds = o.Gate
	}
	return container(&o.Options, InitContainerName, image, args, creds)
}

// Inject adds shiplock's initContainer to every pod template in docs, a
// multi-document YAML stream: Deployments, StatefulSets, DaemonSets,
// ReplicaSets (apps), Jobs and CronJobs (batch), Pods and PodTemplates,
// also inside a List; only those named opts.Name when it is set.
//
// Documents it does not change are copied byte for byte. A changed
// document keeps its comments, key order and quoting; only its
// indentation is normalised. Injecting is idempotent: a template that
// already has the same initContainer (found by InitContainerName) and
// annotations is left as it was, byte for byte; one with an older
// rendering (another tag) has it replaced in place.
//
// When opts.Tag is empty and opts.Image has no tag, the tag of the
// template's first tagged container (the app's) is used: the migration
// image is built with the app's tag.
//
// A mesh-injected template (see [MeshAuto]) gets the database port added
// to Linkerd's skip-outbound-ports or Istio's excludeOutboundPorts, merged
// into the list it may already have.
//
// Errors are *FieldError for options, *DocError for the input, and
// ErrNoWorkload when nothing matched.
func Inject(docs []byte, opts InjectOptions) ([]byte, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Image == "" {
		_, err := imageRef(opts.Image, opts.Tag)
		return nil, err
	}
	var out strings.Builder
	found := 0
	for i, c := range splitDocuments(docs) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.body), &doc); err != nil {
			return nil, &DocError{Doc: i + 1, Err: fmt.Errorf("parse YAML: %w", err)}
		}
		changed := false
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			n, ch, err := opts.injectObject(doc.Content[0])
			if err != nil {
				var de *DocError
				if errors.As(err, &de) {
					de.Doc = i + 1
					return nil, de
				}
				return nil, &DocError{Doc: i + 1, Err: err}
			}
			found += n
			changed = ch
		}
		out.WriteString(c.sep)
		if !changed {
			out.WriteString(c.body)
			continue
		}
		enc, err := encodeDocument(&doc, detectStyle(c.body), c.body)
		if err != nil {
			return nil, &DocError{Doc: i + 1, Err: fmt.Errorf("encode YAML: %w", err)}
		}
		out.WriteString(enc)
	}
	if found == 0 {
		if opts.Name != "" {
			return nil, fmt.Errorf("%w: none named %q", ErrNoWorkload, opts.Name)
		}
		return nil, fmt.Errorf("%w: no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod or PodTemplate", ErrNoWorkload)
	}
	return []byte(out.String()), nil
}

// injectObject injects into obj, or into the items of a List. It returns
// how many pod templates matched and whether any changed.
func (o *InjectOptions) injectObject(obj *yaml.Node) (int, bool, error) {
	if obj.Kind != yaml.MappingNode {
		return 0, false, nil
	}
	kind, apiVersion := getString(obj, "kind"), getString(obj, "apiVersion")
	name := getString(get(obj, "metadata"), "name")
	if kind == "List" && apiVersion == "v1" {
		items := get(obj, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return 0, false, nil
		}
		found, changed := 0, false
		for _, item := range items.Content {
			n, ch, err := o.injectObject(item)
			if err != nil {
				return 0, false, err
			}
			found += n
			changed = changed || ch
		}
		return found, changed, nil
	}
	tp, ok := templatePaths[kind]
	group, _, hasGroup := strings.Cut(apiVersion, "/")
	if !hasGroup {
		group = ""
	}
	if !ok || group != tp.group || (o.Name != "" && name != o.Name) {
		return 0, false, nil
	}
	fail := func(err error) (int, bool, error) {
		return 0, false, &DocError{Kind: kind, Name: name, Err: err}
	}
	tmpl := obj
	for _, key := range tp.path {
		tmpl = get(tmpl, key)
		if tmpl == nil || tmpl.Kind != yaml.MappingNode {
			return fail(fmt.Errorf("no pod template at %s", strings.Join(tp.path, ".")))
		}
	}
	changed, err := o.injectTemplate(tmpl)
	if err != nil {
		return fail(err)
	}
	return 1, changed, nil
}

// injectTemplate adds or updates the initContainer and the mesh
// annotations of one pod template (a mapping with metadata and spec).
func (o *InjectOptions) injectTemplate(tmpl *yaml.Node) (bool, error) {
	spec := get(tmpl, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return false, errors.New("the pod template has no spec")
	}
	meta := get(tmpl, "metadata")
	annotations := stringMap(get(meta, "annotations"))
	m, err := detectMesh(annotations, stringMap(get(meta, "labels")))
	if err != nil {
		return false, err
	}
	m = resolveMesh(o.Mesh, m)

	image, err := o.image(spec)
	if err != nil {
		return false, err
	}
	c := o.container(image)
	changed, err := o.setInitContainer(spec, c)
	if err != nil {
		return false, err
	}
	if meshed(m) {
		key := excludeAnnotation(m)
		old, had := annotations[key]
		if v := addPort(old, o.Database.port()); !had || v != old {
			if meta == nil {
				if meta, err = ensure(tmpl, "metadata", yaml.MappingNode, "spec"); err != nil {
					return false, err
				}
			}
			an, err := ensure(meta, "annotations", yaml.MappingNode, "")
			if err != nil {
				return false, fmt.Errorf("metadata.%w", err)
			}
			setString(an, key, v)
			changed = true
		}
	}
	return changed, nil
}

// image resolves the initContainer's image, taking the tag of the
// template's first tagged container when the options give none.
func (o *InjectOptions) image(spec *yaml.Node) (string, error) {
	if hasTag, hasDigest := splitImage(o.Image); o.Tag == "" && !hasTag && !hasDigest {
		if cs := get(spec, "containers"); cs != nil && cs.Kind == yaml.SequenceNode {
			for _, c := range cs.Content {
				if t := imageTag(getString(c, "image")); t != "" {
					return imageRef(o.Image, t)
				}
			}
		}
	}
	return imageRef(o.Image, o.Tag)
}

// setInitContainer puts c into spec.initContainers: in place of the one
// named InitContainerName (or o.Replace), else at the end. It reports
// whether spec changed.
func (o *InjectOptions) setInitContainer(spec *yaml.Node, c corev1.Container) (bool, error) {
	inits, err := ensure(spec, "initContainers", yaml.SequenceNode, "containers")
	if err != nil {
		return false, err
	}
	at := -1
	for _, want := range []string{InitContainerName, o.Replace} {
		if want == "" {
			continue
		}
		for i, n := range inits.Content {
			if getString(n, "name") == want {
				at = i
				break
			}
		}
		if at >= 0 {
			break
		}
	}
	if at >= 0 {
		var existing corev1.Container
		if getString(inits.Content[at], "name") == InitContainerName {
			if err := fromNode(inits.Content[at], &existing); err == nil && equality.Semantic.DeepEqual(existing, c) {
				return false, nil
			}
		}
	}
	n, err := toNode(c)
	if err != nil {
		return false, err
	}
	if at >= 0 {
		if getString(inits.Content[at], "name") == InitContainerName {
			// A comment on shiplock's own container is still true; one on
			// the container it replaces (o.Replace) is not.
			n.HeadComment = inits.Content[at].HeadComment
		}
		inits.Content[at] = n
	} else {
		block(inits)
		inits.Content = append(inits.Content, n)
	}
	return true, nil
}

package manifest

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/shiplock/shiplock/dialect"
	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
)

// ErrNoWorkload is returned (wrapped) by Inject when the input has no pod
// template to inject into, or none that the options select.
var ErrNoWorkload = errors.New("manifest: no workload to inject into")

// ErrNoContainer is returned (wrapped in a *DocError) by Inject when a
// selected pod template has no container named InjectOptions.Replace (and
// no shiplock container yet).
var ErrNoContainer = errors.New("no container to replace")

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
	// Select restricts Inject to these workloads; each must match one.
	// Empty means all.
	Select []Selector
	// Labels restricts Inject to the workloads whose own labels match this
	// selector, in kubectl's syntax ("app=accounts,tier!=batch").
	Labels string
	// Replace is the name of an existing container (the old
	// "nc -z && goose up" one, say) that the shiplock container takes the
	// place of: an initContainer of any pod template, or a container of a
	// Job's or CronJob's pod (the seed's migration Job), where shiplock
	// then runs as the Job's main container. Every selected pod template
	// must have it, unless it already has the shiplock container (found by
	// InitContainerName), which is then updated in place.
	Replace string

	labels labels.Selector // Labels, parsed by validate
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
	if o.Labels != "" {
		sel, err := labels.Parse(o.Labels)
		if err != nil {
			return fieldErr("Labels", "%q: %v", o.Labels, err)
		}
		o.labels = sel
	}
	for i, s := range o.Select {
		if _, ok := templatePaths[s.Kind]; !ok || s.Name == "" {
			return fieldErr("Select", "%q: want KIND/NAME of a workload", s.String())
		}
		for _, t := range o.Select[:i] {
			if t == s {
				return fieldErr("Select", "%q is given twice", s.String())
			}
		}
	}
	return nil
}

// container renders the initContainer.
func (o *InjectOptions) container(image string) corev1.Container {
	return o.containerArgs(image, o.args())
}

func (o *InjectOptions) args() []string {
	if len(o.Args) > 0 {
		return o.Args
	}
	if o.Pattern == PatternGate {
		return []string{"await"}
	}
	return []string{"up"}
}

func (o *InjectOptions) containerArgs(image string, args []string) corev1.Container {
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
// Errors are *FieldError for options, *DocError for the input (wrapping
// ErrNoContainer when a template lacks opts.Replace), and ErrNoWorkload
// when nothing matched.
func Inject(docs []byte, opts InjectOptions) ([]byte, error) {
	out, _, err := InjectWorkloads(docs, opts)
	return out, err
}

// InjectWorkloads is Inject that also returns the workloads it matched, in
// the order of the input, so that a caller can say what it changed.
func InjectWorkloads(docs []byte, opts InjectOptions) ([]byte, []Workload, error) {
	if err := opts.validate(); err != nil {
		return nil, nil, err
	}
	if opts.Image == "" {
		_, err := imageRef(opts.Image, opts.Tag)
		return nil, nil, err
	}
	var out strings.Builder
	var found []Workload
	for i, c := range splitDocuments(docs) {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(c.body), &doc); err != nil {
			return nil, nil, &DocError{Doc: i + 1, Err: fmt.Errorf("parse YAML: %w", err)}
		}
		changed := false
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			ws, err := opts.injectObject(doc.Content[0])
			if err != nil {
				var de *DocError
				if errors.As(err, &de) {
					de.Doc = i + 1
					return nil, nil, de
				}
				return nil, nil, &DocError{Doc: i + 1, Err: err}
			}
			for _, w := range ws {
				w.Doc = i + 1
				found = append(found, w)
				changed = changed || w.Changed
			}
		}
		out.WriteString(c.sep)
		if !changed {
			out.WriteString(c.body)
			continue
		}
		enc, err := encodeDocument(&doc, detectStyle(c.body), c.body)
		if err != nil {
			return nil, nil, &DocError{Doc: i + 1, Err: fmt.Errorf("encode YAML: %w", err)}
		}
		out.WriteString(enc)
	}
	for _, s := range opts.Select {
		if !slices.ContainsFunc(found, func(w Workload) bool { return w.Kind == s.Kind && w.Name == s.Name }) {
			return nil, nil, fmt.Errorf("%w: no %s%s", ErrNoWorkload, s, opts.restriction(s))
		}
	}
	if len(found) == 0 {
		if opts.Name != "" || opts.Labels != "" {
			return nil, nil, fmt.Errorf("%w: none%s", ErrNoWorkload, opts.restriction(Selector{}))
		}
		return nil, nil, fmt.Errorf("%w: no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod or PodTemplate", ErrNoWorkload)
	}
	return []byte(out.String()), found, nil
}

// restriction describes the options' other conditions than s, for an
// error saying nothing matched them.
func (o *InjectOptions) restriction(s Selector) string {
	var conds []string
	if o.Name != "" && o.Name != s.Name {
		conds = append(conds, fmt.Sprintf("named %q", o.Name))
	}
	if o.Labels != "" {
		conds = append(conds, fmt.Sprintf("with labels %q", o.Labels))
	}
	if len(conds) == 0 {
		return ""
	}
	return " " + strings.Join(conds, " and ")
}

// injectObject injects into obj, or into the items of a List. It returns
// the pod templates that matched.
func (o *InjectOptions) injectObject(obj *yaml.Node) ([]Workload, error) {
	if obj.Kind != yaml.MappingNode {
		return nil, nil
	}
	kind, apiVersion := getString(obj, "kind"), getString(obj, "apiVersion")
	meta := get(obj, "metadata")
	name := getString(meta, "name")
	if kind == "List" && apiVersion == "v1" {
		items := get(obj, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil, nil
		}
		var found []Workload
		for _, item := range items.Content {
			ws, err := o.injectObject(item)
			if err != nil {
				return nil, err
			}
			found = append(found, ws...)
		}
		return found, nil
	}
	tp, ok := templatePaths[kind]
	group, _, hasGroup := strings.Cut(apiVersion, "/")
	if !hasGroup {
		group = ""
	}
	if !ok || group != tp.group || !o.matches(kind, name, stringMap(get(meta, "labels"))) {
		return nil, nil
	}
	fail := func(err error) ([]Workload, error) {
		return nil, &DocError{Kind: kind, Name: name, Err: err}
	}
	tmpl := obj
	for _, key := range tp.path {
		tmpl = get(tmpl, key)
		if tmpl == nil || tmpl.Kind != yaml.MappingNode {
			return fail(fmt.Errorf("no pod template at %s", strings.Join(tp.path, ".")))
		}
	}
	w := Workload{Kind: kind, Name: name}
	var err error
	if w.Changed, w.Replaced, err = o.injectTemplate(kind, tmpl); err != nil {
		return fail(err)
	}
	return []Workload{w}, nil
}

// slot is where the shiplock container goes in a pod spec: the list
// (initContainers or containers) and the index in it, -1 to append.
type slot struct {
	list *yaml.Node
	at   int
	main bool // in containers: shiplock is the main container of a Job's pod
}

// place finds the shiplock container's slot in spec: the shiplock
// container already there, else the container o.Replace names (an
// initContainer, or a Job's container), else the end of initContainers.
func (o *InjectOptions) place(kind string, spec *yaml.Node) (slot, error) {
	inits, mains := get(spec, "initContainers"), get(spec, "containers")
	find := func(list *yaml.Node, name string) int {
		if list == nil || list.Kind != yaml.SequenceNode || name == "" {
			return -1
		}
		for i, n := range list.Content {
			if getString(n, "name") == name {
				return i
			}
		}
		return -1
	}
	for _, want := range []string{InitContainerName, o.Replace} {
		if i := find(inits, want); i >= 0 {
			if want != InitContainerName {
				if err := o.sameTable(want, inits.Content[i]); err != nil {
					return slot{}, err
				}
			}
			return slot{list: inits, at: i}, nil
		}
		if i := find(mains, want); i >= 0 {
			if kind != "Job" && kind != "CronJob" {
				return slot{}, fmt.Errorf("%q is a container of the app, not an initContainer: --replace takes an initContainer, or the container of a Job", want)
			}
			if o.Pattern == PatternGate {
				return slot{}, fmt.Errorf("the gate pattern waits in an initContainer; it cannot replace the Job's container %q", want)
			}
			if want != InitContainerName {
				if err := o.sameTable(want, mains.Content[i]); err != nil {
					return slot{}, err
				}
			}
			return slot{list: mains, at: i, main: true}, nil
		}
	}
	if o.Replace != "" {
		return slot{}, fmt.Errorf("%w: no container named %q (initContainers: %s; containers: %s)",
			ErrNoContainer, o.Replace, names(inits), names(mains))
	}
	inits, err := ensure(spec, "initContainers", yaml.SequenceNode, "containers")
	if err != nil {
		return slot{}, err
	}
	return slot{list: inits, at: -1}, nil
}

// sameTable refuses to replace the goose container c (named name) when it
// names a version table (goose's -table flag or GOOSE_TABLE) other than the
// one shiplock renders: shiplock would find that table empty and apply
// every migration again.
func (o *InjectOptions) sameTable(name string, c *yaml.Node) error {
	used := gooseTable(c)
	if used == "" {
		return nil
	}
	want, _ := dialect.ParseTable(o.Table)
	if got, err := dialect.ParseTable(used); err == nil && got.String() == want.String() {
		return nil
	}
	return fmt.Errorf("the replaced container %q uses goose table %s (shiplock's would be %s): pass --table %s", name, used, want, used)
}

// gooseTable returns the version table the container c gives goose: the
// value of -table/--table in its command or args (also inside a shell
// string, "sh -c '... goose -table x up'"), else of a literal GOOSE_TABLE
// variable; "" when it names none.
func gooseTable(c *yaml.Node) string {
	var words []string
	for _, key := range []string{"command", "args"} {
		if l := get(c, key); l != nil && l.Kind == yaml.SequenceNode {
			for _, n := range l.Content {
				words = append(words, strings.Fields(n.Value)...)
			}
		}
	}
	unquote := func(w string) string { return strings.Trim(w, `"'`) }
	for i, w := range words {
		w = unquote(w)
		switch {
		case (w == "-table" || w == "--table") && i+1 < len(words):
			return strings.TrimRight(unquote(words[i+1]), ";")
		case strings.HasPrefix(w, "-table=") || strings.HasPrefix(w, "--table="):
			_, v, _ := strings.Cut(w, "=")
			return strings.TrimRight(unquote(v), ";")
		}
	}
	if env := get(c, "env"); env != nil && env.Kind == yaml.SequenceNode {
		for _, e := range env.Content {
			if getString(e, "name") == "GOOSE_TABLE" {
				return getString(e, "value")
			}
		}
	}
	return ""
}

// names lists the containers of a sequence, for an error.
func names(list *yaml.Node) string {
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return "none"
	}
	var out []string
	for _, n := range list.Content {
		out = append(out, getString(n, "name"))
	}
	return strings.Join(out, ", ")
}

// injectTemplate adds or updates the shiplock container and the mesh
// annotations of one pod template (a mapping with metadata and spec). It
// reports whether the template changed and which container it replaced.
func (o *InjectOptions) injectTemplate(kind string, tmpl *yaml.Node) (bool, string, error) {
	spec := get(tmpl, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return false, "", errors.New("the pod template has no spec")
	}
	meta := get(tmpl, "metadata")
	annotations := stringMap(get(meta, "annotations"))
	m, err := detectMesh(annotations, stringMap(get(meta, "labels")))
	if err != nil {
		return false, "", err
	}
	m = resolveMesh(o.Mesh, m)

	image, err := o.image(spec)
	if err != nil {
		return false, "", err
	}
	at, err := o.place(kind, spec)
	if err != nil {
		return false, "", err
	}
	// An initContainer runs before a classic proxy has started, so only
	// the database port must bypass it; a Job's main container must also
	// let the proxy go when done (see mainMesh).
	// A native sidecar proxy starts before the initContainers, so nothing
	// needs to bypass it; a bypass would also take the app's own database
	// traffic out of the mesh (the annotation is pod-wide).
	native := annotations[LinkerdNativeSidecar] == "true" || annotations[IstioNativeSidecar] == "true"
	var want map[string]string
	args := o.args()
	if meshed(m) && !native {
		want = map[string]string{excludeAnnotation(m): addPort(annotations[excludeAnnotation(m)], o.Database.port())}
	}
	if at.main {
		var extra map[string]string
		if extra, args, err = mainMesh(m, native, o.Database.port(), args); err != nil {
			return false, "", err
		}
		for k, v := range extra {
			if k != excludeAnnotation(m) && want != nil {
				want[k] = v
			}
		}
	}
	c := o.containerArgs(image, args)
	replaced := ""
	if at.at >= 0 {
		if n := getString(at.list.Content[at.at], "name"); n != InitContainerName {
			replaced = n
		}
	}
	changed, err := setContainer(at, c)
	if err != nil {
		return false, "", err
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if old, had := annotations[key]; had && old == want[key] {
			continue
		}
		if meta == nil {
			if meta, err = ensure(tmpl, "metadata", yaml.MappingNode, "spec"); err != nil {
				return false, "", err
			}
		}
		an, err := ensure(meta, "annotations", yaml.MappingNode, "")
		if err != nil {
			return false, "", fmt.Errorf("metadata.%w", err)
		}
		setString(an, key, want[key])
		changed = true
	}
	return changed, replaced, nil
}

// image resolves the initContainer's image, taking the tag of the
// template's first tagged container when the options give none.
func (o *InjectOptions) image(spec *yaml.Node) (string, error) {
	if hasTag, hasDigest := splitImage(o.Image); o.Tag == "" && !hasTag && !hasDigest {
		if cs := get(spec, "containers"); cs != nil && cs.Kind == yaml.SequenceNode {
			for _, c := range cs.Content {
				if getString(c, "name") == InitContainerName {
					continue // shiplock's own, as a Job's container
				}
				if t := imageTag(getString(c, "image")); t != "" {
					return imageRef(o.Image, t)
				}
			}
		}
	}
	return imageRef(o.Image, o.Tag)
}

// setContainer puts c into its slot: in place of the container there, or
// at the end. It reports whether the spec changed.
func setContainer(at slot, c corev1.Container) (bool, error) {
	if at.at >= 0 {
		var existing corev1.Container
		if getString(at.list.Content[at.at], "name") == InitContainerName {
			if err := fromNode(at.list.Content[at.at], &existing); err == nil && equality.Semantic.DeepEqual(existing, c) {
				return false, nil
			}
		}
	}
	n, err := toNode(c)
	if err != nil {
		return false, err
	}
	if at.at >= 0 {
		if getString(at.list.Content[at.at], "name") == InitContainerName {
			// A comment on shiplock's own container is still true; one on
			// the container it replaces (o.Replace) is not.
			n.HeadComment = at.list.Content[at.at].HeadComment
		}
		at.list.Content[at.at] = n
	} else {
		block(at.list)
		at.list.Content = append(at.list.Content, n)
	}
	return true, nil
}

package manifest

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/shiplock/shiplock/dialect"
)

// Container names.
const (
	// JobContainerName is the container of a rendered Job; its
	// podFailurePolicy refers to it.
	JobContainerName = "migrate"
	// InitContainerName is the initContainer Inject adds. Inject finds an
	// earlier injection by this name and replaces it, so injecting twice
	// changes nothing and injecting with a new tag updates it.
	InitContainerName = "shiplock"
)

// shutdownVerbs are the shiplock commands that take --wait-proxy and
// --sidecar-shutdown (both "none" by default).
var shutdownVerbs = map[string]bool{"up": true, "down": true, "redo": true, "repair": true}

// hasFlag reports whether args set the flag --name, in either spelling.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

// container builds the shiplock container. image is resolved; args are
// final; creds are who it connects as (the Database's, or the gate's).
func container(o *Options, name, image string, args []string, creds Credentials) corev1.Container {
	command := o.Command
	if command == nil {
		command = []string{DefaultCommand}
	}
	res := DefaultResources()
	if o.Resources != nil {
		res = *o.Resources.DeepCopy()
	}
	return corev1.Container{
		Name:                     name,
		Image:                    image,
		ImagePullPolicy:          o.ImagePullPolicy,
		Command:                  append([]string(nil), command...),
		Args:                     append([]string(nil), args...),
		Env:                      env(o, creds),
		Resources:                res,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          securityContext(),
	}
}

// securityContext is non-root, read-only and unprivileged: what the
// "restricted" Pod Security Standard asks of a container. It names no UID:
// the image's numeric USER (65532) applies, and a platform that assigns its
// own UID (OpenShift's restricted SCC) may; runAsNonRoot makes the runtime
// refuse a root or non-numeric image user either way.
func securityContext() *corev1.SecurityContext {
	no, yes := false, true
	return &corev1.SecurityContext{
		RunAsNonRoot:             &yes,
		ReadOnlyRootFilesystem:   &yes,
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// env is the container's environment: the migrations directory and version
// table, then the database, in the order libpq users read them (MySQL:
// DATABASE_URL, MYSQL_USER, MYSQL_PWD). No value is a password.
func env(o *Options, creds Credentials) []corev1.EnvVar {
	d := &o.Database
	dir := o.MigrationsDir
	if dir == "" {
		dir = DefaultMigrationsDir
	}
	vars := []corev1.EnvVar{{Name: "SHIPLOCK_DIR", Value: dir}}
	if t, _ := dialect.ParseTable(o.Table); !t.IsZero() {
		vars = append(vars, corev1.EnvVar{Name: "SHIPLOCK_TABLE", Value: o.Table})
	}
	switch {
	case !creds.URLSecret.isZero():
		vars = append(vars, secretEnv("DATABASE_URL", creds.URLSecret.Name, creds.URLSecret.Key))
	case d.URL != "":
		vars = append(vars, corev1.EnvVar{Name: "DATABASE_URL", Value: d.URL})
	}
	if d.MySQL() {
		// shiplock reads MYSQL_USER and MYSQL_PWD where the URL names no
		// user or password; libpq's variables mean nothing to MySQL.
		if d.Host != "" && creds.URLSecret.isZero() {
			vars = append(vars, corev1.EnvVar{Name: "DATABASE_URL", Value: d.mysqlURL()})
		}
		if creds.Secret != "" {
			user, pass := creds.keys()
			vars = append(vars, secretEnv("MYSQL_USER", creds.Secret, user), secretEnv("MYSQL_PWD", creds.Secret, pass))
		}
		return vars
	}
	if d.Host != "" && creds.URLSecret.isZero() {
		vars = append(vars, corev1.EnvVar{Name: "PGHOST", Value: d.Host})
		if d.Port != 0 {
			vars = append(vars, corev1.EnvVar{Name: "PGPORT", Value: strconv.Itoa(int(d.Port))})
		}
		if d.Name != "" {
			vars = append(vars, corev1.EnvVar{Name: "PGDATABASE", Value: d.Name})
		}
	}
	if d.SSLMode != "" {
		vars = append(vars, corev1.EnvVar{Name: "PGSSLMODE", Value: d.SSLMode})
	}
	switch d.RequireAuth {
	case RequireAuthAny:
	case "":
		vars = append(vars, corev1.EnvVar{Name: "PGREQUIREAUTH", Value: DefaultRequireAuth})
	default:
		vars = append(vars, corev1.EnvVar{Name: "PGREQUIREAUTH", Value: d.RequireAuth})
	}
	if creds.Secret != "" {
		user, pass := creds.keys()
		vars = append(vars, secretEnv("PGUSER", creds.Secret, user), secretEnv("PGPASSWORD", creds.Secret, pass))
	}
	return vars
}

// keys are the Secret's keys of the user name and the password.
func (c Credentials) keys() (user, pass string) {
	user, pass = c.UserKey, c.PasswordKey
	if user == "" {
		user = DefaultUserKey
	}
	if pass == "" {
		pass = DefaultPasswordKey
	}
	return user, pass
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key},
	}}
}

package manifest

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shiplock/shiplock/dialect"

	"github.com/shiplock/shiplock/internal/redact"
)

// Database drivers (Database.Driver).
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
)

// Mesh names the service mesh whose proxy is injected into the pod.
type Mesh string

const (
	// MeshAuto is the zero value. Inject reads the pod template's own
	// annotations and labels (linkerd.io/inject, sidecar.istio.io/inject,
	// istio.io/rev); Job renders no mesh settings.
	MeshAuto Mesh = ""
	// MeshNone renders no mesh settings, whatever the pod template says.
	MeshNone Mesh = "none"
	// MeshLinkerd is Linkerd: the pods get its proxy, for example because
	// their namespace is annotated linkerd.io/inject: enabled.
	MeshLinkerd Mesh = "linkerd"
	// MeshIstio is Istio in sidecar mode: the pods get an istio-proxy, for
	// example because their namespace is labelled istio-injection=enabled.
	MeshIstio Mesh = "istio"
)

// ParseMesh parses "auto" (or ""), "none", "linkerd" or "istio".
func ParseMesh(s string) (Mesh, error) {
	switch s {
	case "", "auto":
		return MeshAuto, nil
	case string(MeshNone), string(MeshLinkerd), string(MeshIstio):
		return Mesh(s), nil
	}
	return "", fmt.Errorf("manifest: unknown mesh %q: want auto, none, linkerd or istio", s)
}

// Pattern is what an injected initContainer does.
type Pattern string

const (
	// PatternInit runs "shiplock up" in every pod before the app starts:
	// the schema is coupled to the app's image tag. The zero value means
	// PatternInit.
	PatternInit Pattern = "init"
	// PatternGate runs "shiplock await": the pod waits until a Job has
	// migrated the schema to the version its image carries. It needs only
	// read-only credentials ([InjectOptions.Gate]).
	PatternGate Pattern = "gate"
)

// ParsePattern parses "init" (or "") or "gate".
func ParsePattern(s string) (Pattern, error) {
	switch s {
	case "", string(PatternInit):
		return PatternInit, nil
	case string(PatternGate):
		return PatternGate, nil
	}
	return "", fmt.Errorf("manifest: unknown pattern %q: want init or gate", s)
}

// SecretKey names one key of a Secret in the pod's namespace.
type SecretKey struct {
	Name string
	Key  string
}

func (k SecretKey) isZero() bool { return k.Name == "" && k.Key == "" }

// Credentials say where the container finds who it connects as. A
// manifest never holds a password: it is read from a Secret when the pod
// starts.
type Credentials struct {
	// Secret is a Secret whose UserKey and PasswordKey become PGUSER and
	// PGPASSWORD (MySQL: MYSQL_USER and MYSQL_PWD).
	Secret string
	// UserKey is the Secret's key holding the user name (default
	// "username").
	UserKey string
	// PasswordKey is the Secret's key holding the password (default
	// "password").
	PasswordKey string
	// URLSecret is a Secret key holding the whole connection string; it
	// becomes DATABASE_URL. It cannot be combined with Secret.
	URLSecret SecretKey
}

func (c Credentials) isZero() bool {
	return c.Secret == "" && c.UserKey == "" && c.PasswordKey == "" && c.URLSecret.isZero()
}

// Database says which database the container migrates: either a location
// (Host, Port, Name, SSLMode, rendered as libpq's PGHOST, PGPORT,
// PGDATABASE and PGSSLMODE) with the user and password from a Secret, or a
// connection string (URL, or Credentials.URLSecret) that holds everything.
// One of Host, URL or URLSecret is required.
//
// For MySQL and MariaDB (Driver [DriverMySQL], or a mysql:// URL) the
// location is rendered as DATABASE_URL=mysql://HOST:PORT/NAME and the
// Secret's user and password as MYSQL_USER and MYSQL_PWD, which shiplock
// reads when the URL names no user or password; SSLMode and RequireAuth
// are libpq's and must be left empty.
type Database struct {
	// Driver is the kind of database: "" or [DriverPostgres] (PostgreSQL),
	// or [DriverMySQL] (MySQL and MariaDB). A URL's scheme says it too; a
	// URL in a Secret does not, so Driver also picks the port a mesh must
	// let through.
	Driver string
	// Host is the database server's host name (PGHOST).
	Host string
	// Port is the server's port. With Host it is rendered as PGPORT
	// (libpq's default 5432 when zero); with a connection string it is only
	// the port a mesh must let through (default: the URL's port, else 5432).
	Port int32
	// Name is the database name (PGDATABASE). shiplock also reads PGDBNAME,
	// but the rendered manifest uses libpq's own name.
	Name string
	// SSLMode is libpq's sslmode (PGSSLMODE): disable, allow, prefer,
	// require, verify-ca or verify-full; empty leaves libpq's default.
	SSLMode string
	// RequireAuth is libpq's require_auth (PGREQUIREAUTH): the
	// authentication methods the client accepts from the server, checked
	// before it sends anything. Empty means [DefaultRequireAuth]: with the
	// default sslmode (prefer), a server without TLS that asks for a
	// cleartext password ("password" in pg_hba.conf) would otherwise be
	// sent it in the clear. [RequireAuthAny] renders no PGREQUIREAUTH
	// (libpq's default: any method); for an md5 server, "md5" or
	// "md5,scram-sha-256"; "!password" refuses only cleartext.
	RequireAuth string
	// URL is a connection string without a password, rendered as a literal
	// DATABASE_URL (the password may then come from Credentials.Secret as
	// PGPASSWORD). A URL that holds a password is refused.
	URL string
	Credentials
}

// Options describe the shiplock container that both [Job] and [Inject]
// render. Image and a [Database] are required; every other field has a
// default, documented on it.
type Options struct {
	// Image is the migration image: shiplock and the migration files,
	// built with the same tag as the app (for example
	// "registry.example.com/accounts-migrations"). It must end up with a
	// tag or a digest, from Image itself or from Tag, so that every release
	// renders a different manifest.
	Image string
	// Tag is appended to Image as ":"+Tag; Image must then have no tag or
	// digest of its own. A placeholder ($TAG, see [IsPlaceholder]) is kept
	// verbatim for envsubst.
	Tag string
	// ImagePullPolicy is Always, IfNotPresent or Never, or a placeholder
	// ($IMAGEPULLPOLICY); empty leaves it to Kubernetes.
	ImagePullPolicy corev1.PullPolicy
	// Command is the container's command (default ["shiplock"], which the
	// runtime resolves through the image's PATH to /usr/local/bin/shiplock
	// in shiplock's images). Set it to an empty non-nil slice to run the
	// image's entrypoint with Args.
	Command []string
	// Args are shiplock's arguments: the command and its flags, such as
	// ["down", "--to", "20261101000000"]. Job requires them; Inject defaults
	// to ["up"] (PatternInit) or ["await"] (PatternGate).
	Args []string
	// MigrationsDir is where the image keeps the migration files, rendered
	// as SHIPLOCK_DIR (default "/migrations").
	MigrationsDir string
	// Table is goose's version table (goose's -table: NAME or
	// SCHEMA.NAME), rendered as SHIPLOCK_TABLE; "" is goose_db_version and
	// renders nothing.
	Table string
	// Database is the database to migrate.
	Database Database
	// Mesh is the service mesh of the pods; see [MeshAuto].
	Mesh Mesh
	// Resources are the container's requests and limits; nil means
	// [DefaultResources].
	Resources *corev1.ResourceRequirements
}

// Defaults used when the corresponding option is empty.
const (
	// DefaultCommand is a bare name resolved through PATH: shiplock's
	// images put the binary in /usr/local/bin, a directory of every
	// runtime's default PATH, and set that PATH themselves.
	DefaultCommand       = "shiplock"
	DefaultMigrationsDir = "/migrations"
	DefaultUserKey       = "username"
	DefaultPasswordKey   = "password"
	DefaultPort          = 5432
	// DefaultMySQLPort is MySQL's and MariaDB's port.
	DefaultMySQLPort = 3306
	// DefaultRequireAuth is the rendered PGREQUIREAUTH: the password never
	// leaves the pod except in a SCRAM exchange, which proves it without
	// sending it.
	DefaultRequireAuth = "scram-sha-256"
	// RequireAuthAny, as Database.RequireAuth, renders no PGREQUIREAUTH.
	RequireAuthAny = "any"
)

// DefaultResources are small requests and limits: shiplock holds one
// connection and streams SQL files; the database does the work.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("50m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		},
	}
}

// FieldError is an option that cannot be rendered. Field is the option's
// path in Go ("Database.Host"); Other, when set, is the option it
// conflicts with. The message never repeats a value that may hold a
// password.
type FieldError struct {
	Field string
	Msg   string
	Other string
}

func (e *FieldError) Error() string {
	msg := "manifest: " + e.Field + ": " + e.Msg
	if e.Other != "" {
		msg += " " + e.Other
	}
	return msg
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func conflict(field, other string) *FieldError {
	return &FieldError{Field: field, Msg: "cannot be combined with", Other: other}
}

// holdsPassword reports whether s holds something redaction would mask: a
// URL's password, a password= pair.
func holdsPassword(s string) bool { return redact.URL(s) != s }

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// splitImage reports whether image carries a tag (after the last path
// component's ':') or a digest.
func splitImage(image string) (hasTag, hasDigest bool) {
	hasDigest = strings.Contains(image, "@")
	name := image
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	last := name[strings.LastIndex(name, "/")+1:]
	return strings.Contains(last, ":"), hasDigest
}

// imageTag returns the tag of image, or "".
func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}

// imageRef resolves Image and Tag into one reference with a tag or digest.
func imageRef(image, tag string) (string, error) {
	if image == "" {
		return "", fieldErr("Image", "is required: the migration image (shiplock and the migration files)")
	}
	if strings.ContainsAny(image, " \t\n") || strings.HasSuffix(image, ":") || strings.HasSuffix(image, "/") {
		return "", fieldErr("Image", "%q is not an image reference", image)
	}
	hasTag, hasDigest := splitImage(image)
	if tag != "" {
		if hasTag || hasDigest {
			return "", &FieldError{Field: "Tag", Msg: "cannot be combined with an image that has its own tag or digest:", Other: "Image"}
		}
		if !tagRE.MatchString(tag) && !IsPlaceholder(tag) {
			return "", fieldErr("Tag", "%q is not an image tag", tag)
		}
		return image + ":" + tag, nil
	}
	if !hasTag && !hasDigest {
		return "", fieldErr("Tag", "is required: image %q has no tag or digest, and every release needs its own (the tag the app is built with)", image)
	}
	return image, nil
}

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// validate checks the options every container shares. It never looks at
// the image, which Inject may complete from the pod template.
func (o *Options) validate() error {
	switch o.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		if IsPlaceholder(string(o.ImagePullPolicy)) {
			break
		}
		return fieldErr("ImagePullPolicy", "%q: want Always, IfNotPresent or Never", o.ImagePullPolicy)
	}
	for _, a := range append(append([]string{}, o.Command...), o.Args...) {
		if holdsPassword(a) {
			return fieldErr("Args", "an argument holds a password: a manifest must not; give the database through a Secret")
		}
	}
	if o.MigrationsDir != "" && !path.IsAbs(o.MigrationsDir) {
		return fieldErr("MigrationsDir", "%q: want an absolute path inside the image", o.MigrationsDir)
	}
	if _, err := dialect.ParseTable(o.Table); err != nil {
		return fieldErr("Table", "%v", err)
	}
	switch o.Mesh {
	case MeshAuto, MeshNone, MeshLinkerd, MeshIstio:
	default:
		return fieldErr("Mesh", "%q: want linkerd, istio, none or empty", o.Mesh)
	}
	if o.Resources != nil {
		for name, limit := range o.Resources.Limits {
			if req, ok := o.Resources.Requests[name]; ok && req.Cmp(limit) > 0 {
				return fieldErr("Resources", "the %s request %s is above its limit %s", name, req.String(), limit.String())
			}
		}
	}
	return o.Database.validate("Database")
}

// MySQL reports whether the database is MySQL or MariaDB: Driver says
// so, or URL is a mysql:// URL or go-sql-driver's DSN (USER@tcp(HOST)/DB).
func (d *Database) MySQL() bool { return d.Driver == DriverMySQL || isMySQLURL(d.URL) }

func isMySQLURL(u string) bool {
	scheme, _, ok := strings.Cut(u, "://")
	scheme = strings.ToLower(scheme)
	return ok && (scheme == "mysql" || scheme == "mariadb") || mysqlDSNAddrRE.MatchString(u)
}

// mysqlDSNAddrRE finds the address of go-sql-driver's DSN: tcp(HOST:PORT).
var mysqlDSNAddrRE = regexp.MustCompile(`@(?:tcp|tcp4|tcp6|unix)\(([^()]*)\)/`)

func (d *Database) validate(field string) error {
	switch d.Driver {
	case "", DriverPostgres, DriverMySQL:
	default:
		return fieldErr(field+".Driver", "%q: want %s or %s", d.Driver, DriverPostgres, DriverMySQL)
	}
	if d.Driver == DriverPostgres && isMySQLURL(d.URL) {
		return conflict(field+".Driver", field+".URL")
	}
	if d.MySQL() {
		switch {
		case d.SSLMode != "":
			return fieldErr(field+".SSLMode", "is libpq's (PostgreSQL): for MySQL, keep a URL with tls=true in a Secret")
		case d.RequireAuth != "" && d.RequireAuth != RequireAuthAny:
			return fieldErr(field+".RequireAuth", "is libpq's (PostgreSQL): MySQL has no such setting")
		case d.Host != "" && d.Name == "":
			return fieldErr(field+".Name", "is required for MySQL: the server has no default database")
		}
	}
	if d.URL != "" && holdsPassword(d.URL) {
		if d.MySQL() {
			return fieldErr(field+".URL", "holds a password, which a manifest must not: keep the whole URL in a Secret, or only the password (as MYSQL_PWD)")
		}
		return fieldErr(field+".URL", "holds a password, which a manifest must not: keep the whole URL in a Secret, or only the password (as PGPASSWORD)")
	}
	switch {
	case d.URL != "" && !d.URLSecret.isZero():
		return conflict(field+".URL", field+".URLSecret")
	case d.Host != "" && d.URL != "":
		return conflict(field+".Host", field+".URL")
	case d.Host != "" && !d.URLSecret.isZero():
		return conflict(field+".Host", field+".URLSecret")
	case d.Name != "" && d.URL != "":
		return conflict(field+".Name", field+".URL")
	case d.Name != "" && !d.URLSecret.isZero():
		return conflict(field+".Name", field+".URLSecret")
	case d.Host == "" && d.URL == "" && d.URLSecret.isZero():
		return fieldErr(field, "no database given: a host (with a Secret for the user and password), a Secret key holding a URL, or a URL without a password")
	}
	if strings.ContainsAny(d.Host, " \t\n/") {
		return fieldErr(field+".Host", "%q is not a host name", d.Host)
	}
	if d.Port < 0 || d.Port > 65535 {
		return fieldErr(field+".Port", "%d is not a port", d.Port)
	}
	if d.SSLMode != "" && !sslModes[d.SSLMode] {
		return fieldErr(field+".SSLMode", "%q: want disable, allow, prefer, require, verify-ca or verify-full", d.SSLMode)
	}
	if err := validRequireAuth(d.RequireAuth); err != nil {
		return fieldErr(field+".RequireAuth", "%q: %v", d.RequireAuth, err)
	}
	return d.Credentials.validate(field)
}

// authMethods are the methods libpq's require_auth names.
var authMethods = map[string]bool{"password": true, "md5": true, "gss": true, "sspi": true, "scram-sha-256": true, "oauth": true, "none": true}

// validRequireAuth checks a require_auth value as libpq reads it: a list
// of methods, each negated with '!' or none of them.
func validRequireAuth(v string) error {
	if v == "" || v == RequireAuthAny {
		return nil
	}
	negated := 0
	parts := strings.Split(v, ",")
	for _, p := range parts {
		m, neg := strings.CutPrefix(p, "!")
		if !authMethods[m] {
			return fmt.Errorf("want %s, a comma-separated list of password, md5, scram-sha-256, gss, sspi, oauth or none (each may be negated with '!'), or %s", DefaultRequireAuth, RequireAuthAny)
		}
		if neg {
			negated++
		}
	}
	if negated != 0 && negated != len(parts) {
		return fmt.Errorf("negated and plain methods cannot be mixed")
	}
	return nil
}

func (c *Credentials) validate(field string) error {
	if c.Secret != "" && !c.URLSecret.isZero() {
		return conflict(field+".Secret", field+".URLSecret")
	}
	if c.Secret == "" && (c.UserKey != "" || c.PasswordKey != "") {
		other := field + ".UserKey"
		if c.UserKey == "" {
			other = field + ".PasswordKey"
		}
		return &FieldError{Field: field + ".Secret", Msg: "is required with", Other: other}
	}
	if c.Secret != "" {
		if errs := validation.IsDNS1123Subdomain(c.Secret); len(errs) > 0 {
			return fieldErr(field+".Secret", "%q is not a Secret name: %s", c.Secret, errs[0])
		}
	}
	for _, k := range []struct{ field, key string }{{"UserKey", c.UserKey}, {"PasswordKey", c.PasswordKey}} {
		if k.key == "" {
			continue
		}
		if errs := validation.IsConfigMapKey(k.key); len(errs) > 0 {
			return fieldErr(field+"."+k.field, "%q is not a Secret key: %s", k.key, errs[0])
		}
	}
	if !c.URLSecret.isZero() {
		if c.URLSecret.Name == "" || c.URLSecret.Key == "" {
			return fieldErr(field+".URLSecret", "needs both a Secret name and a key (NAME:KEY)")
		}
		if errs := validation.IsDNS1123Subdomain(c.URLSecret.Name); len(errs) > 0 {
			return fieldErr(field+".URLSecret", "%q is not a Secret name: %s", c.URLSecret.Name, errs[0])
		}
		if errs := validation.IsConfigMapKey(c.URLSecret.Key); len(errs) > 0 {
			return fieldErr(field+".URLSecret", "%q is not a Secret key: %s", c.URLSecret.Key, errs[0])
		}
	}
	return nil
}

// port is the database port a mesh must let through.
func (d *Database) port() int32 {
	if d.Port != 0 {
		return d.Port
	}
	if d.URL != "" {
		if u, err := url.Parse(d.URL); err == nil && u.Port() != "" {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				return int32(p)
			}
		}
		if m := mysqlDSNAddrRE.FindStringSubmatch(d.URL); m != nil {
			if _, port, err := net.SplitHostPort(m[1]); err == nil {
				if p, err := strconv.Atoi(port); err == nil {
					return int32(p)
				}
			}
		}
	}
	return d.defaultPort()
}

func (d *Database) defaultPort() int32 {
	if d.MySQL() {
		return DefaultMySQLPort
	}
	return DefaultPort
}

// mysqlURL is the DATABASE_URL of a MySQL location: no user, no password.
func (d *Database) mysqlURL() string {
	host := d.Host
	if d.Port != 0 {
		host = net.JoinHostPort(d.Host, strconv.Itoa(int(d.Port)))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	return (&url.URL{Scheme: "mysql", Host: host, Path: "/" + d.Name}).String()
}

// identity names the database, not who connects to it, so that Jobs for
// the same database share it whatever their credentials.
func (d *Database) identity() string {
	switch {
	case !d.URLSecret.isZero():
		return "secret:" + d.URLSecret.Name + "/" + d.URLSecret.Key
	case d.URL != "":
		u, err := url.Parse(d.URL)
		if err != nil || u.Host == "" {
			return "dsn:" + d.URL
		}
		port := u.Port()
		if port == "" {
			port = strconv.Itoa(int(d.defaultPort()))
		}
		return d.scheme() + net.JoinHostPort(u.Hostname(), port) + u.Path
	}
	port := d.Port
	if port == 0 {
		port = d.defaultPort()
	}
	return d.scheme() + net.JoinHostPort(d.Host, strconv.Itoa(int(port))) + "/" + d.Name
}

func (d *Database) scheme() string {
	if d.MySQL() {
		return "mysql://"
	}
	return "postgres://"
}

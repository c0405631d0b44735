//go:build !nokube

package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shiplock/shiplock/internal/redact"
	"github.com/shiplock/shiplock/kube/manifest"
)

func newKubeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kube",
		Short: "Render the Kubernetes Job and initContainer that run shiplock, or run the Job",
		Long: `Render Kubernetes manifests that run shiplock, as YAML on stdout for
"kubectl apply -f -". Three patterns:

  initContainer  shiplock kube inject -f deployment.yaml
                 every pod runs "shiplock up" before the app; the schema
                 follows the app's image tag
  Job            shiplock kube job --image IMAGE:TAG ... -- up
                 one run per release, or out of band: -- down --to VERSION
  Job + gate     the Job above, and
                 shiplock kube inject --pattern gate -f deployment.yaml
                 the pods only wait ("shiplock await", read-only credentials)
                 until the Job has migrated the schema their image carries

Only "kube run" talks to a cluster: it creates the Job and follows it. The
manifests never hold a password: the database user and password come from a
Secret (--secret, or --url-secret for a whole connection string).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef(fmt.Sprintf("unknown command %q for \"shiplock kube\": want job, inject or run", args[0]))
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newKubeJobCmd(g), newKubeInjectCmd(g), newKubeRunCmd(g))
	return cmd
}

// kubeFlags are the flags of the shiplock container that kube job and kube
// inject both render.
type kubeFlags struct {
	image         string
	tag           string
	pullPolicy    string
	command       string
	migrationsDir string
	dbHost        string
	dbDriver      string
	dbPort        int32
	dbName        string
	dbSSLMode     string
	dbRequireAuth string
	secret        string
	userKey       string
	passwordKey   string
	urlSecret     string
	mesh          string
	requests      string
	limits        string
}

func (f *kubeFlags) register(fs *pflag.FlagSet, meshDefault, meshHelp string) {
	fs.StringVar(&f.image, "image", "", "migration image: shiplock and the migration files (required), e.g. registry.example.com/accounts-migrations")
	fs.StringVar(&f.tag, "tag", "", "image tag, appended to --image (the tag the app is built with)")
	fs.StringVar(&f.pullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (default: Kubernetes')")
	fs.StringVar(&f.command, "command", manifest.DefaultCommand, `the container's command; "" runs the image's entrypoint with the shiplock arguments`)
	fs.StringVar(&f.migrationsDir, "migrations-dir", manifest.DefaultMigrationsDir, "where the image keeps the migration files (rendered as SHIPLOCK_DIR)")
	fs.StringVar(&f.dbDriver, "db-driver", "", "the database: postgres (default) or mysql (MySQL and MariaDB: --db-host, --db-port and --db-name are rendered as DATABASE_URL=mysql://HOST:PORT/NAME and --secret's user and password as MYSQL_USER and MYSQL_PWD); a mysql:// --database-url says mysql itself")
	fs.StringVar(&f.dbHost, "db-host", "", "database host (PGHOST; MySQL: in DATABASE_URL)")
	fs.Int32Var(&f.dbPort, "db-port", 0, "database port (PGPORT; with a mesh, the port its proxy lets through; default 5432, MySQL 3306)")
	fs.StringVar(&f.dbName, "db-name", "", "database name (PGDATABASE; MySQL: in DATABASE_URL)")
	fs.StringVar(&f.dbSSLMode, "db-sslmode", "", "libpq sslmode (PGSSLMODE): disable, allow, prefer, require, verify-ca or verify-full; PostgreSQL only (MySQL: tls= in a URL given with --url-secret)")
	fs.StringVar(&f.dbRequireAuth, "db-require-auth", manifest.DefaultRequireAuth, "authentication methods the pod accepts from the server (PGREQUIREAUTH), checked before the password is sent: the default never sends it in the clear; md5 for an md5 server, '!password' to refuse only cleartext, any to render nothing")
	fs.StringVar(&f.secret, "secret", "", "Secret holding the database user and password (PGUSER, PGPASSWORD; MySQL: MYSQL_USER, MYSQL_PWD)")
	fs.StringVar(&f.userKey, "secret-user-key", manifest.DefaultUserKey, "key of the user name in the Secret")
	fs.StringVar(&f.passwordKey, "secret-password-key", manifest.DefaultPasswordKey, "key of the password in the Secret")
	fs.StringVar(&f.urlSecret, "url-secret", "", "NAME:KEY of a Secret key holding the whole connection string (DATABASE_URL), instead of --db-host and --secret")
	fs.StringVar(&f.mesh, "mesh", meshDefault, meshHelp)
	fs.StringVar(&f.requests, "requests", "", "resource requests, e.g. cpu=100m,memory=128Mi, over the defaults (cpu=50m,memory=64Mi); NAME= removes one")
	fs.StringVar(&f.limits, "limits", "", "resource limits, e.g. memory=512Mi, over the defaults (cpu=500m,memory=256Mi); NAME= removes one")
}

// options resolves the flags into manifest.Options. The database comes
// from flags only (and the global --database-url), never from this
// shell's environment: a manifest describes the pod's, not ours.
func (f *kubeFlags) options(cmd *cobra.Command, g *globals, args []string) (manifest.Options, error) {
	if cmd.Flags().Changed("dir") {
		return manifest.Options{}, usagef("--dir is the local migrations directory; the directory inside the image is --migrations-dir")
	}
	o := manifest.Options{
		Image:           f.image,
		Tag:             f.tag,
		ImagePullPolicy: corev1.PullPolicy(f.pullPolicy),
		Args:            args,
		MigrationsDir:   f.migrationsDir,
		// The version table is the repository's setting, like its files:
		// resolved here (flags, SHIPLOCK_TABLE, GOOSE_TABLE, .env) and
		// rendered for the pod.
		Table: g.table.String(),
		Database: manifest.Database{
			Driver:      f.dbDriver,
			Host:        f.dbHost,
			Port:        f.dbPort,
			Name:        f.dbName,
			SSLMode:     f.dbSSLMode,
			RequireAuth: f.dbRequireAuth,
			URL:         g.databaseURL,
		},
	}
	if o.Database.MySQL() && !cmd.Flags().Changed("db-require-auth") {
		o.Database.RequireAuth = "" // libpq's default, which means nothing to MySQL
	}
	o.Command = []string{}
	if f.command != "" {
		o.Command = []string{f.command}
	}
	if f.secret != "" || cmd.Flags().Changed("secret-user-key") || cmd.Flags().Changed("secret-password-key") {
		o.Database.Secret, o.Database.UserKey, o.Database.PasswordKey = f.secret, f.userKey, f.passwordKey
	}
	var err error
	if o.Database.URLSecret, err = parseSecretKey("--url-secret", f.urlSecret); err != nil {
		return o, err
	}
	if o.Mesh, err = manifest.ParseMesh(f.mesh); err != nil {
		return o, usagef(fmt.Sprintf("--mesh %q: want auto, none, linkerd or istio", f.mesh))
	}
	res := manifest.DefaultResources()
	if err := setResources(res.Requests, "--requests", f.requests); err != nil {
		return o, err
	}
	if err := setResources(res.Limits, "--limits", f.limits); err != nil {
		return o, err
	}
	o.Resources = &res
	return o, nil
}

// parseSecretKey parses NAME:KEY.
func parseSecretKey(flag, s string) (manifest.SecretKey, error) {
	if s == "" {
		return manifest.SecretKey{}, nil
	}
	name, key, ok := strings.Cut(s, ":")
	if !ok || name == "" || key == "" {
		return manifest.SecretKey{}, usagef(fmt.Sprintf("%s %q: want SECRET:KEY, e.g. accounts-db:uri", flag, s))
	}
	return manifest.SecretKey{Name: name, Key: key}, nil
}

// setResources applies NAME=QUANTITY[,NAME=QUANTITY] to list; NAME= deletes.
func setResources(list corev1.ResourceList, flag, s string) error {
	if s == "" {
		return nil
	}
	for _, item := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			return usagef(fmt.Sprintf("%s %q: want NAME=QUANTITY[,NAME=QUANTITY], e.g. cpu=100m,memory=128Mi", flag, s))
		}
		if value == "" {
			delete(list, corev1.ResourceName(name))
			continue
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return usagef(fmt.Sprintf("%s: %s=%q is not a quantity", flag, name, value))
		}
		list[corev1.ResourceName(name)] = q
	}
	return nil
}

// renderVerbs are shiplock commands that make no sense in a pod.
var renderVerbs = map[string]bool{"kube": true, "help": true, "create": true, "fix": true, "completion": true}

// checkShiplockArgs parses args as the container will, with a fresh
// command tree, so that a typo fails now rather than in the cluster.
func checkShiplockArgs(args []string) error {
	if len(args) == 0 {
		return nil
	}
	for _, a := range args {
		if redact.URL(a) != a {
			return usagef("the shiplock arguments hold a password, which a manifest must not: give the database with --secret or --url-secret")
		}
	}
	root := newRoot(&globals{})
	sub, rest, err := root.Find(args)
	if err != nil || sub == root {
		return usagef(fmt.Sprintf("unknown shiplock command %q (the shiplock arguments start with a command, such as up or down --to VERSION)", args[0]))
	}
	for c := sub; c.HasParent(); c = c.Parent() {
		if renderVerbs[c.Name()] {
			return usagef(fmt.Sprintf("%q cannot run in a pod", sub.CommandPath()))
		}
	}
	if err := sub.ParseFlags(rest); err != nil {
		return usagef(fmt.Sprintf("shiplock %s: %v (the flags of shiplock kube go before the shiplock command)", sub.Name(), err))
	}
	if err := sub.ValidateArgs(sub.Flags().Args()); err != nil {
		return usagef(fmt.Sprintf("shiplock %s: %v", sub.Name(), err))
	}
	return nil
}

// kubeFlagNames maps manifest option fields to the flags that set them.
var kubeFlagNames = map[string]string{
	"Image":                   "--image",
	"Tag":                     "--tag",
	"ImagePullPolicy":         "--image-pull-policy",
	"Command":                 "--command",
	"Args":                    "the shiplock arguments (after --)",
	"MigrationsDir":           "--migrations-dir",
	"Table":                   "--table",
	"Mesh":                    "--mesh",
	"Resources":               "--requests/--limits",
	"Database.Driver":         "--db-driver",
	"Database.Host":           "--db-host",
	"Database.Port":           "--db-port",
	"Database.Name":           "--db-name",
	"Database.SSLMode":        "--db-sslmode",
	"Database.RequireAuth":    "--db-require-auth",
	"Database.URL":            "--database-url",
	"Database.Secret":         "--secret",
	"Database.UserKey":        "--secret-user-key",
	"Database.PasswordKey":    "--secret-password-key",
	"Database.URLSecret":      "--url-secret",
	"Gate":                    "--gate-secret",
	"Gate.Secret":             "--gate-secret",
	"Gate.UserKey":            "--secret-user-key",
	"Gate.PasswordKey":        "--secret-password-key",
	"Gate.URLSecret":          "--gate-url-secret",
	"Namespace":               "--namespace",
	"Labels":                  "-l",
	"Select":                  "--select",
	"NamePrefix":              "--name-prefix",
	"NativeSidecar":           "--native-sidecar",
	"BackoffLimit":            "--backoff-limit",
	"ActiveDeadlineSeconds":   "--active-deadline",
	"TTLSecondsAfterFinished": "--ttl-after-finished",
	"ServiceAccountName":      "--service-account",
	"Pattern":                 "--pattern",
	"Name":                    "--name",
	"Replace":                 "--replace",
}

func flagName(field string) string {
	if f, ok := kubeFlagNames[field]; ok {
		return f
	}
	return field
}

// kubeError turns the manifest package's errors into usage errors (exit 2)
// that name flags rather than Go fields. source names the input, for
// kube inject.
func kubeError(err error, source string) error {
	var (
		field *manifest.FieldError
		doc   *manifest.DocError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &field) && field.Field == "Database":
		return usagef("no database given: set --db-host (with --secret for the user and password), --url-secret SECRET:KEY, or --database-url without a password")
	case errors.As(err, &field):
		msg := flagName(field.Field) + ": " + field.Msg
		if field.Other != "" {
			msg += " " + flagName(field.Other)
		}
		return usagef(msg)
	case errors.As(err, &doc):
		return usagef(source + ": " + strings.TrimPrefix(doc.Error(), "manifest: "))
	case errors.Is(err, manifest.ErrNoWorkload):
		return usagef(source + ": " + strings.TrimPrefix(err.Error(), "manifest: "))
	}
	return err
}

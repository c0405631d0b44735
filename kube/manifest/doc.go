// Package manifest renders the Kubernetes objects that run shiplock: a Job
// that migrates once ([Job]), and the initContainer of an app's pods
// ([InitContainer], [Inject]), either migrating ([PatternInit]) or waiting
// for the schema a Job migrates ([PatternGate]).
//
// Everything here is a pure function from options to typed k8s.io/api
// objects or YAML: no I/O, no cluster, no client-go. The rendered objects
// are safe by construction: the password always comes from a Secret (a
// literal one is refused), the container runs as non-root on a read-only
// root file system with no capabilities, a Job fails at once on shiplock's
// permanent exit codes and is named after what it runs, and a pod whose
// service mesh proxy would capture the database connection lets that port
// through.
package manifest

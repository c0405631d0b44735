// Package shiplock is the root of shiplock's module: safe, goose-compatible
// database schema migrations for Kubernetes. The command is cmd/shiplock;
// the engine is package migrate.
package shiplock

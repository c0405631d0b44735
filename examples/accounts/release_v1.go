//go:build !v2

package main

// The v1 release needs the schema up to the event triggers.
const (
	release       = "v1"
	schemaVersion = 20261106090000
	hasPhone      = false
)

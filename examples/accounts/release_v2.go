//go:build v2

package main

// The v2 release adds phone numbers (migration 20261120090000).
const (
	release       = "v2"
	schemaVersion = 20261120090000
	hasPhone      = true
)

//go:build !unix

package cli

// lockDir is a no-op where flock is not available: racing creates still
// settle through the version check in create.
func lockDir(string) (func(), error) { return func() {}, nil }

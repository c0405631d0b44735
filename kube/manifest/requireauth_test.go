package manifest

import (
	"errors"
	"testing"
)

// TestRequireAuth: the rendered pod refuses to send its password in the
// clear by default (PGREQUIREAUTH=scram-sha-256), an md5 server can be
// allowed, and "any" opts out.
func TestRequireAuth(t *testing.T) {
	tests := []struct {
		set, want string // want "" means no PGREQUIREAUTH
	}{
		{"", "scram-sha-256"},
		{"md5", "md5"},
		{"md5,scram-sha-256", "md5,scram-sha-256"},
		{"!password", "!password"},
		{RequireAuthAny, ""},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			o := accountsJob("up")
			o.Database.RequireAuth = tt.set
			job, err := Job(o)
			if err != nil {
				t.Fatal(err)
			}
			got, found := "", false
			for _, e := range job.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "PGREQUIREAUTH" {
					got, found = e.Value, true
				}
			}
			if got != tt.want || found != (tt.want != "") {
				t.Errorf("PGREQUIREAUTH = %q (set: %v), want %q", got, found, tt.want)
			}
		})
	}
	for _, bad := range []string{"scram", "md5,!password", "md5,md5x", ","} {
		o := accountsJob("up")
		o.Database.RequireAuth = bad
		_, err := Job(o)
		var ferr *FieldError
		if !errors.As(err, &ferr) || ferr.Field != "Database.RequireAuth" {
			t.Errorf("RequireAuth %q: %v, want a FieldError on Database.RequireAuth", bad, err)
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/test/kube/kubetest"
)

const (
	accountsV1 = 20261106090000 // the schema release v1 needs
	accountsV2 = 20261120090000
)

// release is one version of the accounts system: the images
// cmd/shiplock-image built for it (kubetest.ImagePrefix + accounts:vN and
// accounts-migrate:vN), run by the node agent under runc.
type release struct{ name string }

func releases() (release, release) { return release{"v1"}, release{"v2"} }

func (r release) appImage() string     { return kubetest.ImagePrefix + "accounts:" + r.name }
func (r release) migrateImage() string { return kubetest.ImagePrefix + "accounts-migrate:" + r.name }

// accountsDeployment is examples/accounts/deploy/base/deployment.yaml with
// what differs on the test cluster: 2 replicas, the app image of release
// r, and the test database on 127.0.0.1.
func accountsDeployment(t *testing.T, db kubeDB, r release) string {
	t.Helper()
	raw, err := os.ReadFile("../../examples/accounts/deploy/base/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatal(err)
	}
	d.Namespace = ""
	two := int32(2)
	d.Spec.Replicas = &two
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image = r.appImage()
	for i, e := range c.Env {
		switch e.Name {
		case "PGHOST":
			c.Env[i].Value = db.srv.Host
		case "PGDBNAME":
			c.Env[i].Value = db.name
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "PGPORT", Value: strconv.Itoa(db.srv.Port)}, corev1.EnvVar{Name: "PGSSLMODE", Value: "disable"})
	out, err := yaml.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// migrateFlags point rendered manifests at release r's migration image;
// runFlags add the cluster flags of kube run.
func (d kubeDB) migrateFlags(r release) []string { return d.runFlags(r)[4:] }

func (d kubeDB) runFlags(r release) []string { return d.imageFlags(r.migrateImage()) }

// api calls the accounts API of every ready pod of the Deployment in turn
// and returns the first pod's answer; all pods must agree on the status.
func api(t *testing.T, env *kubetest.Env, method, path string, body any, want int) map[string]any {
	t.Helper()
	var first map[string]any
	n := 0
	for _, p := range env.Pods(t, "app.kubernetes.io/name=accounts") {
		if p.DeletionTimestamp != nil || !kubetest.PodReady(&p) {
			continue
		}
		port, ok := kubetest.PodPort(&p, "PORT_NUM")
		if !ok {
			t.Fatalf("pod %s has no port", p.Name)
		}
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s on pod %s: %v", method, path, p.Name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s on pod %s = %d %s, want %d", method, path, p.Name, resp.StatusCode, raw, want)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		if first == nil {
			first = out
		}
		n++
		if method != http.MethodGet {
			break // not idempotent: once
		}
	}
	if n == 0 {
		t.Fatalf("%s %s: no ready pod", method, path)
	}
	return first
}

func available(t *testing.T, env *kubetest.Env) {
	t.Helper()
	env.WaitForDeployment(t, "accounts", 3*time.Minute, kubetest.DeploymentAvailable)
}

// TestAccountsPatterns deploys the accounts system with each pattern: v1
// with 2 replicas, an account created through the API, v2 rolled out (its
// migration applied once, the data kept), then the emergency: the
// Deployment rolled back to v1 and v2's schema change undone out of band
// with "shiplock kube run -- down --to <v1>". The service answers after
// each step.
func TestAccountsPatterns(t *testing.T) {
	for _, pattern := range []string{"init", "job", "gate"} {
		t.Run(pattern, func(t *testing.T) {
			t.Parallel()
			kubetest.RequireImages(t)
			env := kubetest.New(t)
			db := newKubeDB(t, env)
			v1, v2 := releases()

			deploy := func(r release) {
				base := accountsDeployment(t, db, r)
				switch pattern {
				case "init":
					apply(t, env, inject(t, base, db.migrateFlags(r)...))
				case "job":
					if code, out, errOut := kubeRun(t, db.runFlags(r), "up"); code != 0 {
						t.Fatalf("kube run %s -- up: exit %d\n%s\n%s", r.name, code, out, errOut)
					}
					var d appsv1.Deployment
					if err := yaml.UnmarshalStrict([]byte(base), &d); err != nil {
						t.Fatal(err)
					}
					apply(t, env, &d)
				case "gate":
					apply(t, env, inject(t, base, append(db.migrateFlags(r), "--pattern", "gate", "--gate-secret", db.secret)...))
					if code, out, errOut := kubeRun(t, db.runFlags(r), "up"); code != 0 {
						t.Fatalf("kube run %s -- up: exit %d\n%s\n%s", r.name, code, out, errOut)
					}
				}
				available(t, env)
			}

			deploy(v1)
			if v := db.version(t); v != accountsV1 {
				t.Fatalf("version %d after v1, want %d", v, accountsV1)
			}
			created := api(t, env, "POST", "/accounts", map[string]any{"email": "ada@example.com", "display_name": "Ada"}, http.StatusCreated)
			id := strconv.FormatInt(int64(created["id"].(float64)), 10)
			if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["served_by"] != "v1" {
				t.Fatalf("v1 answer = %v", got)
			}

			deploy(v2)
			if v := db.version(t); v != accountsV2 {
				t.Fatalf("version %d after v2, want %d", v, accountsV2)
			}
			if n := queryInt(t, db.srv.URL(db.name, "", ""), fmt.Sprintf("SELECT count(*) FROM goose_db_version WHERE version_id = %d", accountsV2)); n != 1 {
				t.Fatalf("v2's migration recorded %d times, want once", n)
			}
			if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["served_by"] != "v2" || got["email"] != "ada@example.com" {
				t.Fatalf("v2 answer = %v; want the account kept, served by v2", got)
			}
			api(t, env, "POST", "/accounts", map[string]any{"email": "grace@example.com", "phone": "+15550100"}, http.StatusCreated)

			// The emergency: back to v1's app, then v1's schema, out of band.
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(accountsDeployment(t, db, v1)), &d); err != nil {
				t.Fatal(err)
			}
			switch pattern {
			case "init":
				apply(t, env, inject(t, accountsDeployment(t, db, v1), db.migrateFlags(v1)...))
			case "gate":
				apply(t, env, inject(t, accountsDeployment(t, db, v1), append(db.migrateFlags(v1), "--pattern", "gate", "--gate-secret", db.secret)...))
			default:
				apply(t, env, &d)
			}
			available(t, env)
			if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["served_by"] != "v1" {
				t.Fatalf("after the rollback: %v", got)
			}
			undoV2Schema(t, env, db, id)
		})
	}
}

// undoV2Schema is the emergency's second step, once the app runs v1 again:
// v2's schema change undone out of band with "shiplock kube run -- down
// --to <v1>" and v2's image (which has the Down section); the service
// keeps its data and answers.
func undoV2Schema(t *testing.T, env *kubetest.Env, db kubeDB, id string) {
	t.Helper()
	_, v2 := releases()
	code, out, errOut := kubeRun(t, db.runFlags(v2), "down", "--to", strconv.Itoa(accountsV1))
	if code != 0 || !strings.Contains(errOut, fmt.Sprintf("reverted 1 migration, now at version %d", accountsV1)) {
		t.Fatalf("kube run -- down --to v1: exit %d\n%s\n%s", code, out, errOut)
	}
	if v := db.version(t); v != accountsV1 {
		t.Fatalf("version %d after the rollback, want %d", v, accountsV1)
	}
	if got := api(t, env, "GET", "/accounts/"+id, nil, http.StatusOK); got["email"] != "ada@example.com" || got["served_by"] != "v1" {
		t.Fatalf("after down: %v", got)
	}
	api(t, env, "POST", "/accounts", map[string]any{"email": "alan@example.com"}, http.StatusCreated)
}

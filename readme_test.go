package shiplock_test

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/kube/manifest"
)

// TestREADMEExitCodes keeps the README's exit-code table and its
// podFailurePolicy snippet equal to package exitcode and to the Job that
// kube/manifest renders from it.
func TestREADMEExitCodes(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "### Exit codes\n")
	if start < 0 {
		t.Fatal(`README.md has no "### Exit codes" section`)
	}
	section := readme[start:]
	if end := strings.Index(section[1:], "\n#"); end >= 0 {
		section = section[:end+1]
	}

	var table strings.Builder
	table.WriteString("| code | meaning | retry? |\n|---|---|---|\n")
	for _, i := range exitcode.All() {
		retry := ""
		switch i.Kind {
		case exitcode.Permanent:
			retry = "no"
		case exitcode.Retryable:
			retry = "yes"
		}
		fmt.Fprintf(&table, "| %d | %s | %s |\n", i.Code, i.Meaning, retry)
	}
	if !strings.Contains(section, "\n\n"+table.String()+"\n") {
		t.Errorf("README.md's exit-code table differs from package exitcode; want:\n\n%s", table.String())
	}

	var retried []string
	for _, c := range exitcode.Of(exitcode.Retryable) {
		retried = append(retried, fmt.Sprint(int(c)))
	}
	sentence := "Exit codes " + strings.Join(retried[:len(retried)-1], ", ") + " and " + retried[len(retried)-1] + " (and pod disruptions) are retried"
	if !strings.Contains(strings.Join(strings.Fields(section), " "), sentence) {
		t.Errorf("README.md does not say %q", sentence)
	}

	// The YAML snippet means what kube job renders.
	y := section[strings.Index(section, "```yaml\n")+len("```yaml\n"):]
	y = y[:strings.Index(y, "```")]
	var doc struct{ Spec batchv1.JobSpec }
	if err := sigsyaml.UnmarshalStrict([]byte(y), &doc); err != nil {
		t.Fatalf("README.md's podFailurePolicy snippet: %v", err)
	}
	job, err := manifest.Job(manifest.JobOptions{Options: manifest.Options{
		Image: "example.com/m", Tag: "v1", Args: []string{"up"},
		Database: manifest.Database{Host: "db", Name: "app", Credentials: manifest.Credentials{Secret: "s"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.Spec.PodFailurePolicy, job.Spec.PodFailurePolicy) || *doc.Spec.BackoffLimit != *job.Spec.BackoffLimit {
		want, _ := sigsyaml.Marshal(map[string]any{"spec": map[string]any{"backoffLimit": job.Spec.BackoffLimit, "podFailurePolicy": job.Spec.PodFailurePolicy}})
		t.Errorf("README.md's podFailurePolicy snippet differs from what kube job renders:\n%s", want)
	}
}

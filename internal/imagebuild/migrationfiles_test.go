package imagebuild

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMigrationFilesKeepGoMigrations: a migration image carries the
// numbered .go files beside the SQL, as COPY of the directory does, so a
// shiplock without those Go migrations compiled in refuses the directory
// instead of skipping them; other Go and non-migration files stay out.
func TestMigrationFilesKeepGoMigrations(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"00001_a.sql", "00002_b.go", "00003_c.sql", "helper.go", "00004_d_test.go", "README.md"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		max  int64
		want []string
	}{
		{0, []string{"/migrations/00001_a.sql", "/migrations/00002_b.go", "/migrations/00003_c.sql"}},
		{2, []string{"/migrations/00001_a.sql", "/migrations/00002_b.go"}},
	} {
		files, err := MigrationFiles(dir, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, f.Path)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MigrationFiles(max %d) = %q, want %q", tc.max, got, tc.want)
		}
	}
}

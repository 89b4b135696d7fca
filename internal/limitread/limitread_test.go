package limitread

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestAll(t *testing.T) {
	data, err := All(strings.NewReader("12345"), "in", 5)
	if err != nil || string(data) != "12345" {
		t.Fatalf("at the limit: %q, %v", data, err)
	}
	_, err = All(strings.NewReader("123456"), "in", 5)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Name != "in" || tl.Limit != 5 || err.Error() != "in: larger than 5 bytes" {
		t.Fatalf("over the limit: %v", err)
	}
	boom := errors.New("boom")
	if _, err := All(iotest.ErrReader(boom), "in", 5); !errors.Is(err, boom) {
		t.Fatalf("a failing reader: %v", err)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := File(path, 3); err != nil || string(data) != "abc" {
		t.Fatalf("%q, %v", data, err)
	}
	var tl *TooLargeError
	if _, err := File(path, 2); !errors.As(err, &tl) || tl.Name != path {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := File(filepath.Join(dir, "missing"), 2); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
}

// Package limitread reads whole files and streams that must not exceed a
// bound, so that a file or a peer cannot make the reader hold more.
package limitread

import (
	"fmt"
	"io"
	"os"
)

// TooLargeError is what was read when it held more than Limit bytes.
type TooLargeError struct {
	Name  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes", e.Name, e.Limit)
}

// All reads r to its end. More than limit bytes is a *TooLargeError that
// calls the input name; at most limit+1 bytes are read.
func All(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Name: name, Limit: limit}
	}
	return data, nil
}

// File reads the file at path, which must not exceed limit bytes.
func File(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return All(f, path, limit)
}

package sqlite

import (
	"errors"
	"io/fs"
	"os"
)

// createPrivate makes sure the database file exists and is readable by its
// owner only. SQLite creates the -wal and -shm files with the permissions
// of the database file, so they follow. A file an older version created
// with wider permissions is narrowed, with its companions.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

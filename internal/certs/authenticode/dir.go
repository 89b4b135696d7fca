package authenticode

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
)

// DirEntry is the scan of one program found under a directory: either its
// result or why it could not be read.
type DirEntry struct {
	Path string `json:"path"`
	*FileResult
	Error string `json:"error,omitempty"`
}

// DirResult is the scan of a directory tree.
type DirResult struct {
	Files []DirEntry `json:"files"`  // PE images, and files or folders that could not be read
	NotPE int        `json:"not_pe"` // regular files skipped because they are not PE images
}

// Failed reports whether any file or folder could not be scanned.
func (d *DirResult) Failed() bool {
	for _, f := range d.Files {
		if f.Error != "" {
			return true
		}
	}
	return false
}

// ScanDir scans every regular file under root, one at a time (the work is
// hashing, bounded by the disk; memory stays that of one file). Symbolic
// links are not followed, so a scan stays inside root. Files that are not PE
// images are counted, not listed; a malformed image or an unreadable folder
// is listed with its error and the scan goes on. Only a cancelled context
// or an unreadable root stops it.
func ScanDir(ctx context.Context, root string) (*DirResult, error) {
	result := &DirResult{Files: []DirEntry{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if path == root {
				return err
			}
			result.Files = append(result.Files, DirEntry{Path: path, Error: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		res, err := ScanFile(path)
		switch {
		case errors.Is(err, ErrNotPE):
			result.NotPE++
		case err != nil:
			result.Files = append(result.Files, DirEntry{Path: path, Error: err.Error()})
		default:
			result.Files = append(result.Files, DirEntry{Path: path, FileResult: res})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

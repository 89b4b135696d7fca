package privacy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the file in the data directory that holds the SHA-256 of
// the operator's bearer token, in hex. The token itself is shown once when
// it is made and stored nowhere.
const TokenFile = "admin-token.sha256"

// NewToken makes a random bearer token, writes its hash to dir/TokenFile
// (replacing any earlier token) and returns the token.
func NewToken(dir string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	h := TokenHash(token)
	path := filepath.Join(dir, TokenFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(h[:])+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return token, nil
}

// LoadTokenHash reads dir/TokenFile.
func LoadTokenHash(dir string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return h, fmt.Errorf("no operator token in %s: make one with `provision privacy token --data %s`: %w", dir, dir, err)
		}
		return h, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != sha256.Size {
		return h, fmt.Errorf("%s: not a hex SHA-256", filepath.Join(dir, TokenFile))
	}
	copy(h[:], raw)
	return h, nil
}

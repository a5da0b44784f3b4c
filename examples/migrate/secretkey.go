package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailyard/mailyard/migration"
)

// secretKeyBytes is how many random bytes a new key file holds.
const secretKeyBytes = 32

// defaultSecretKeyFile is where the key lives when [migration]
// secret_key_file is not set: migration.key in the user's configuration
// directory (os.UserConfigDir()/mailyard), apart from the data directory,
// so that a copy of the data directory reveals no source password.
func defaultSecretKeyFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("secret key: no user configuration directory (%w); set [migration] secret_key_file", err)
	}
	return filepath.Join(dir, "mailyard", "migration.key"), nil
}

// loadSecretKey reads the key that seals the source passwords kept in
// collector records (migration.Options.SecretKey) from path (""
// for the default), creating the file with a new random key, readable by
// its owner only, if it does not exist yet. The file holds the key in
// hex on one line.
func loadSecretKey(path string) ([]byte, error) {
	if path == "" {
		var err error
		if path, err = defaultSecretKeyFile(); err != nil {
			return nil, err
		}
	}
	key, err := readSecretKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createSecretKey(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		key, err = readSecretKey(path)
	}
	return key, err
}

// createSecretKey writes a new random key to path, which must not exist.
func createSecretKey(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	key := make([]byte, secretKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// readSecretKey reads a hex key file.
func readSecretKey(path string) ([]byte, error) {
	line, err := readFirstLine(path, "the key in hex")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(line))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: not hex: %w", path, err)
	}
	if len(key) < migration.MinSecretKeySize {
		return nil, fmt.Errorf("secret key %s: %d bytes, want at least %d (hex: %d digits)", path, len(key), migration.MinSecretKeySize, 2*migration.MinSecretKeySize)
	}
	return key, nil
}

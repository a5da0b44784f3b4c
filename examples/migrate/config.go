package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/pelletier/go-toml/v2"

	"github.com/mailyard/mailyard/migration"
)

// config is what migrate takes from the mail server's configuration file:
// data_dir, and the [migration] section (documented in README.md). The
// rest of the file belongs to the server and is not read here.
type config struct {
	DataDir   string
	Migration migrationConfig
}

// migrationConfig is the [migration] section. Unknown keys in it are
// errors.
type migrationConfig struct {
	// Allowlist: the source hosts collectors may connect to (CIDR blocks
	// or exact host names). Empty allows nothing.
	Allowlist []string `toml:"allowlist"`
	// Default source and credentials for runs.
	Host               string `toml:"host"`
	Port               int    `toml:"port"`
	TLS                string `toml:"tls"`
	CAFile             string `toml:"ca_file"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
	Auth               string `toml:"auth"`
	Service            string `toml:"service"`
	PasswordFile       string `toml:"password_file"`
	// SecretKeyFile holds the key that seals the source passwords kept
	// in the store (hex; created on first use). Empty: migration.key in
	// os.UserConfigDir()/mailyard.
	SecretKeyFile string   `toml:"secret_key_file"`
	Exclude       []string `toml:"exclude"`
	// Limits (0: the migration package's defaults).
	Parallel        int   `toml:"parallel"`
	FolderParallel  int   `toml:"folder_parallel"`
	MaxConnsPerHost int   `toml:"max_conns_per_host"`
	BandwidthLimit  int64 `toml:"bandwidth_limit"`
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// Reports: sender address and the submission server.
	ReportFrom string `toml:"report_from"`
	Submission string `toml:"submission"`
}

// loadConfig reads data_dir and [migration] from path; an empty path
// returns the defaults (data directory ./data, as the mail server's).
func loadConfig(path string) (config, error) {
	cfg := config{DataDir: "./data"}
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	// The server's own keys are the server's business: read the file
	// loosely, then the [migration] section strictly.
	var top map[string]any
	if err := toml.Unmarshal(data, &top); err != nil {
		return cfg, tomlError(path, err)
	}
	if v, ok := top["data_dir"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return cfg, fmt.Errorf("%s: key \"data_dir\": want a non-empty string", path)
		}
		cfg.DataDir = s
	}
	sec, ok := top["migration"]
	if !ok {
		return cfg, nil
	}
	if _, ok := sec.(map[string]any); !ok {
		return cfg, fmt.Errorf("%s: [migration] must be a table", path)
	}
	raw, err := toml.Marshal(sec)
	if err != nil {
		return cfg, fmt.Errorf("%s: [migration]: %w", path, err)
	}
	dec := toml.NewDecoder(bytes.NewReader(raw)).DisallowUnknownFields()
	if err := dec.Decode(&cfg.Migration); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			return cfg, fmt.Errorf("%s: [migration]: unknown key %q", path, strict.Errors[0].Key()[0])
		}
		return cfg, fmt.Errorf("%s: [migration]: %w", path, err)
	}
	if err := cfg.Migration.validate(); err != nil {
		return cfg, fmt.Errorf("%s: [migration]: %w", path, err)
	}
	return cfg, nil
}

func tomlError(path string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Errorf("%s:%d: %s", path, row, de.Error())
	}
	return fmt.Errorf("%s: %w", path, err)
}

func (c migrationConfig) validate() error {
	for key, v := range map[string]int64{
		"parallel": int64(c.Parallel), "folder_parallel": int64(c.FolderParallel),
		"max_conns_per_host": int64(c.MaxConnsPerHost), "bandwidth_limit": c.BandwidthLimit,
		"max_message_bytes": c.MaxMessageBytes,
	} {
		if v < 0 {
			return fmt.Errorf("key %q: must not be negative", key)
		}
	}
	// The defaults would otherwise be refused only by a run, in an error
	// that names neither this file nor the key.
	switch migration.TLSMode(c.TLS) {
	case "", migration.TLSImplicit, migration.TLSStartTLS, migration.TLSPlain:
	default:
		return fmt.Errorf("key \"tls\": %q is not one of %s, %s, %s", c.TLS, migration.TLSImplicit, migration.TLSStartTLS, migration.TLSPlain)
	}
	switch migration.AuthMode(c.Auth) {
	case "", migration.AuthUser, migration.AuthServicePlain, migration.AuthServiceExchange:
	default:
		return fmt.Errorf("key \"auth\": %q is not one of %s, %s, %s", c.Auth, migration.AuthUser, migration.AuthServicePlain, migration.AuthServiceExchange)
	}
	if c.PasswordFile != "" {
		if _, err := os.Stat(c.PasswordFile); err != nil {
			return fmt.Errorf("key \"password_file\": %w", err)
		}
	}
	return nil
}

// defaults returns the default job of the section (without password).
func (c migrationConfig) defaults() migration.Job {
	j := migration.Job{
		Source: migration.Source{
			Host: c.Host, Port: c.Port, TLS: migration.TLSMode(c.TLS),
			CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
		},
		Credentials: migration.Credentials{Mode: migration.AuthMode(c.Auth), Service: c.Service},
	}
	if c.Exclude != nil {
		j.Exclude = append([]string{}, c.Exclude...)
	}
	return j
}

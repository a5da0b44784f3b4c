package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// errPowerLost is what every operation on a crashFS returns after the
// simulated power loss.
var errPowerLost = errors.New("crashfs: power lost")

// crashFS is an in-memory blobFS that remembers, for every file, the
// content it had at its last fsync and, for every directory, the entries
// it had at its last fsync. At a crash it keeps only that (see crashed):
// a file's unsynced writes and a directory's unsynced creates and removes
// are dropped, as a power cut may drop them. Everything lives under root,
// which itself is durable (it stands for the disk's existing directories).
//
// The store's database is not on it: see TestPowerLoss.
type crashFS struct {
	root string

	mu      sync.Mutex
	top     *cnode
	ops     int // mutating operations so far
	crashAt int // the mutating operation that finds the power gone; 0: none
	down    bool
	// noSync, if set, turns the fsyncs of the paths it reports into
	// no-ops, as if the store did not make them.
	noSync func(path string, dir bool) bool
}

// cnode is a file or a directory of a crashFS.
type cnode struct {
	dir bool
	// A file's current content, and its content at the last fsync.
	data, synced []byte
	// A directory's current entries, and its entries at the last fsync.
	ents, syncedEnts map[string]*cnode
}

func newDir() *cnode {
	return &cnode{dir: true, ents: map[string]*cnode{}, syncedEnts: map[string]*cnode{}}
}

func newCrashFS(root string) *crashFS {
	return &crashFS{root: filepath.Clean(root), top: newDir()}
}

// crashed returns the file system as it is after a power loss now: what
// was fsynced. With rng non-nil each unsynced change (an entry created or
// removed, a file's unsynced tail or a prefix of it) independently
// survives or not, as on a real disk; with nil none survives. The old
// file system fails every operation from now on.
func (c *crashFS) crashed(rng *rand.Rand) *crashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	return &crashFS{root: c.root, top: afterCrash(c.top, rng)}
}

// killed returns the file system as it is after the process using it
// died: everything, fsynced or not (the page cache outlives a process).
// The old file system fails every operation from now on.
func (c *crashFS) killed() *crashFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	return &crashFS{root: c.root, top: c.top, noSync: c.noSync}
}

// afterCrash returns the durable state of n, itself durable.
func afterCrash(n *cnode, rng *rand.Rand) *cnode {
	if !n.dir {
		data := bytes.Clone(n.synced)
		if rng != nil && rng.IntN(2) == 0 && bytes.HasPrefix(n.data, n.synced) {
			// Some of the unsynced tail reached the disk.
			data = bytes.Clone(n.data[:len(n.synced)+rng.IntN(len(n.data)-len(n.synced)+1)])
		}
		return &cnode{data: data, synced: bytes.Clone(data)}
	}
	ents := maps.Clone(n.syncedEnts)
	if rng != nil {
		for _, name := range sortedNames(n.ents, n.syncedEnts) {
			if rng.IntN(2) == 0 {
				if e, ok := n.ents[name]; ok {
					ents[name] = e
				} else {
					delete(ents, name)
				}
			}
		}
	}
	out := newDir()
	for name, e := range ents {
		e := afterCrash(e, rng)
		out.ents[name] = e
		out.syncedEnts[name] = e
	}
	return out
}

// sortedNames returns the names whose entries differ between a and b,
// sorted, so that a seeded crash is reproducible.
func sortedNames(a, b map[string]*cnode) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// isDown reports whether the power is lost.
func (c *crashFS) isDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// op counts a mutating operation and reports whether the power is gone
// (by now, or from this operation on). Called with mu held.
func (c *crashFS) op() error {
	if c.down {
		return errPowerLost
	}
	c.ops++
	if c.ops == c.crashAt {
		c.down = true
		return errPowerLost
	}
	return nil
}

// lookup returns the node at path and its parent directory; node is nil
// if the parent exists but has no such entry. Called with mu held.
func (c *crashFS) lookup(path string) (parent, node *cnode, name string, err error) {
	rel, err := filepath.Rel(c.root, filepath.Clean(path))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, nil, "", fmt.Errorf("crashfs: %s is outside %s", path, c.root)
	}
	if rel == "." {
		return nil, c.top, "", nil
	}
	parts := strings.Split(rel, string(filepath.Separator))
	dir := c.top
	for _, p := range parts[:len(parts)-1] {
		next := dir.ents[p]
		if next == nil || !next.dir {
			return nil, nil, "", &fs.PathError{Op: "lookup", Path: path, Err: fs.ErrNotExist}
		}
		dir = next
	}
	name = parts[len(parts)-1]
	return dir, dir.ents[name], name, nil
}

func (c *crashFS) MkdirAll(path string) error {
	rel, err := filepath.Rel(c.root, filepath.Clean(path))
	if err != nil {
		return err
	}
	p := c.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		p = filepath.Join(p, part)
		if err := c.Mkdir(p); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// What find requires of the node at a path.
const (
	mayMiss = iota
	mustExist
	mustBeFile
	mustBeDir
)

// find looks path up for operation op, with mu held: it fails once the
// power is lost, and with fs.ErrNotExist where path's parent directory
// is missing or path is not what need asks for. parent is nil for root.
func (c *crashFS) find(op, path string, need int) (parent, n *cnode, name string, err error) {
	if c.down {
		return nil, nil, "", errPowerLost
	}
	parent, n, name, err = c.lookup(path)
	if err != nil {
		return nil, nil, "", err
	}
	if need != mayMiss && (n == nil || need == mustBeFile && n.dir || need == mustBeDir && !n.dir) {
		return nil, nil, "", &fs.PathError{Op: op, Path: path, Err: fs.ErrNotExist}
	}
	return parent, n, name, nil
}

func (c *crashFS) Mkdir(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, n, name, err := c.find("mkdir", path, mayMiss)
	if err != nil {
		return err
	}
	if n != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: fs.ErrExist}
	}
	if err := c.op(); err != nil {
		return err
	}
	parent.ents[name] = newDir()
	return nil
}

func (c *crashFS) Stat(path string) (fs.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, n, _, err := c.find("stat", path, mustExist)
	if err != nil {
		return nil, err
	}
	return cinfo{name: filepath.Base(path), size: int64(len(n.data)), dir: n.dir}, nil
}

func (c *crashFS) Create(path string) (blobWriter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, n, name, err := c.find("create", path, mayMiss)
	if err != nil {
		return nil, err
	}
	if n != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	if err := c.op(); err != nil {
		return nil, err
	}
	n = &cnode{}
	parent.ents[name] = n
	return &cfile{c: c, n: n, path: path}, nil
}

func (c *crashFS) Open(path string) (blobReader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, n, _, err := c.find("open", path, mustBeFile)
	if err != nil {
		return nil, err
	}
	// Files are only appended to while being written, before any reader
	// can know their name, so a copy reads like the open file would.
	return creader{bytes.NewReader(bytes.Clone(n.data))}, nil
}

func (c *crashFS) Remove(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, n, name, err := c.find("remove", path, mustExist)
	if err != nil {
		return err
	}
	if parent == nil || n.dir && len(n.ents) > 0 {
		return &fs.PathError{Op: "remove", Path: path, Err: errors.New("directory not empty")}
	}
	if err := c.op(); err != nil {
		return err
	}
	delete(parent.ents, name)
	return nil
}

func (c *crashFS) RemoveAll(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, n, name, err := c.find("removeall", path, mayMiss)
	if err != nil || n == nil {
		return err
	}
	if parent == nil {
		return &fs.PathError{Op: "removeall", Path: path, Err: errors.New("cannot remove the root")}
	}
	if err := c.op(); err != nil {
		return err
	}
	delete(parent.ents, name)
	return nil
}

func (c *crashFS) ReadDir(path string) ([]fs.DirEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, n, _, err := c.find("readdir", path, mustBeDir)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for name, e := range n.ents {
		out = append(out, fs.FileInfoToDirEntry(cinfo{name: name, size: int64(len(e.data)), dir: e.dir}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (c *crashFS) SyncDir(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, n, _, err := c.find("fsync", path, mustBeDir)
	if err != nil {
		return err
	}
	if err := c.op(); err != nil {
		return err
	}
	if c.noSync == nil || !c.noSync(path, true) {
		n.syncedEnts = maps.Clone(n.ents)
	}
	return nil
}

// cfile is a crashFS file open for writing.
type cfile struct {
	c    *crashFS
	n    *cnode
	path string
}

func (f *cfile) Write(p []byte) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if err := f.c.op(); err != nil {
		return 0, err
	}
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

func (f *cfile) Sync() error {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if err := f.c.op(); err != nil {
		return err
	}
	if f.c.noSync == nil || !f.c.noSync(f.path, false) {
		f.n.synced = bytes.Clone(f.n.data)
	}
	return nil
}

func (f *cfile) Close() error { return nil }

type creader struct{ *bytes.Reader }

func (creader) Close() error { return nil }

// cinfo is the fs.FileInfo of a crashFS node.
type cinfo struct {
	name string
	size int64
	dir  bool
}

func (i cinfo) Name() string { return i.name }
func (i cinfo) Size() int64  { return i.size }
func (i cinfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o700
	}
	return 0o600
}
func (i cinfo) ModTime() time.Time { return time.Time{} }
func (i cinfo) IsDir() bool        { return i.dir }
func (i cinfo) Sys() any           { return nil }

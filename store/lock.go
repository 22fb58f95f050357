package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LockInfo says which process holds the store for writing. It lives in a
// small file beside the store; the bbolt flock is the real lock, this file
// only lets a blocked run name the holder.
type LockInfo struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Command string    `json:"command"`
}

// LockedError is returned by Open when another process holds the store for
// longer than Options.Timeout. Info is nil when no (live) lock-info file
// names the holder, which means a read-only command holds it.
type LockedError struct {
	Path string
	Info *LockInfo
}

func (e *LockedError) Error() string {
	if e.Info == nil {
		return fmt.Sprintf("store %s is locked by a read-only command (such as sync --dry-run, status or verify); try again when it finishes", e.Path)
	}
	cmd := ""
	if e.Info.Command != "" {
		cmd = fmt.Sprintf(" %q", e.Info.Command)
	}
	return fmt.Sprintf("store %s is locked by checkin-sync%s, pid %d, started %s; wait for it to finish",
		e.Path, cmd, e.Info.PID, e.Info.Started.Format(time.RFC3339))
}

// LockInfoPath is the lock-info file of a store.
func LockInfoPath(storePath string) string { return storePath + ".lock-info" }

// LivePath is the live-status file a running sync keeps for `status`.
func LivePath(storePath string) string { return storePath + ".live" }

// readLockInfo returns the lock-info file's content, nil when there is none.
func readLockInfo(storePath string) (*LockInfo, error) {
	b, err := os.ReadFile(LockInfoPath(storePath))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock-info: %w", err)
	}
	var li LockInfo
	if err := json.Unmarshal(b, &li); err != nil {
		return nil, fmt.Errorf("read lock-info %s: %w", LockInfoPath(storePath), err)
	}
	return &li, nil
}

// holderInfo names the holder of a lock we could not get. A lock-info file
// whose process is gone was left by a crash, so it says nothing about the
// current holder.
func holderInfo(storePath string) *LockInfo {
	li, err := readLockInfo(storePath)
	if err != nil || li == nil || li.PID <= 0 || !processAlive(li.PID) {
		return nil
	}
	return li
}

// claimLockInfo writes our lock-info, called once the flock is ours. Any
// file already there was left by a process that died holding the lock; it
// is returned so the caller can warn.
func claimLockInfo(storePath string, li LockInfo) (*LockInfo, error) {
	var stale *LockInfo
	if _, err := os.Lstat(LockInfoPath(storePath)); err == nil {
		old, rerr := readLockInfo(storePath)
		if rerr != nil || old == nil {
			old = &LockInfo{} // unreadable, but still left behind
		}
		stale = old
	}
	b, err := json.Marshal(li)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(LockInfoPath(storePath), func(f *os.File) error {
		_, err := f.Write(b)
		return err
	}); err != nil {
		return nil, fmt.Errorf("write lock-info: %w", err)
	}
	return stale, nil
}

// WriteLive replaces the live-status file with v as JSON, atomically, so a
// concurrent `status` sees either the old or the new content.
func WriteLive(storePath string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode live status: %w", err)
	}
	if err := writeAtomic(LivePath(storePath), func(f *os.File) error {
		_, err := f.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("write live status: %w", err)
	}
	return nil
}

// ReadLive decodes the live-status file into v; the error wraps
// os.ErrNotExist when no sync keeps one.
func ReadLive(storePath string, v any) error {
	b, err := os.ReadFile(LivePath(storePath))
	if err != nil {
		return fmt.Errorf("read live status: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read live status %s: %w", LivePath(storePath), err)
	}
	return nil
}

// RemoveLive deletes the live-status file; a missing file is not an error.
func RemoveLive(storePath string) error {
	if err := os.Remove(LivePath(storePath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove live status: %w", err)
	}
	return nil
}

// writeAtomic writes path through a 0600 temp file in the same directory:
// fill, fsync, rename, then fsync the directory so the rename survives a
// crash.
func writeAtomic(path string, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(fileMode); err != nil {
		return err
	}
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. It is best effort: some systems cannot
// fsync a directory, and the data itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

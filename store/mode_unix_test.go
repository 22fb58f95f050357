//go:build unix

package store

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestFilesAre0600 runs with an empty umask, so only the explicit modes
// can keep the files private.
func TestFilesAre0600(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	path := filepath.Join(t.TempDir(), "checkin.db")
	s, err := opener{}.open(path, Options{Command: "sync"}) // schema v1
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteLive(path, map[string]int{"done": 1}); err != nil {
		t.Fatal(err)
	}
	fileMode0600(t, path)
	fileMode0600(t, LockInfoPath(path))
	fileMode0600(t, LivePath(path))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The pre-migration backup too.
	m, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fileMode0600(t, BackupPath(path))
}

// Package store is the local checkpoint store: what has been written to
// Jiandaoyun, per (userid, month), plus pending create batches, month
// summaries, run history and small app state. It is one bbolt file whose
// flock is the only lock between runs; every write of a Write goes into one
// transaction so a crash leaves either all of it or none.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors returned by Open and the transactions. Test them with errors.Is.
var (
	// ErrCorrupt means the file is not a readable checkin-sync store. The
	// file is left as it was.
	ErrCorrupt = errors.New("store corrupt")
	// ErrNewerSchema means a newer checkin-sync wrote the store.
	ErrNewerSchema = errors.New("store written by a newer checkin-sync")
	// ErrNeedsMigration means the store has an older schema and was opened
	// read-only, so it could not be migrated.
	ErrNeedsMigration = errors.New("store needs migration")
	// ErrReadOnly is returned by every write on a store opened read-only.
	ErrReadOnly = errors.New("store opened read-only")
	// ErrIsDirectory means the store path names a directory, not a file:
	// a configuration error, never something to create or repair.
	ErrIsDirectory = errors.New("is a directory, not a store file")
)

// Identity names the corp, app and form a store belongs to. Records of one
// form must never be applied to another, so a mismatch is refused.
type Identity struct{ CorpID, AppID, EntryID string }

// ForeignError is returned by Bind when the store belongs to another corp,
// app or form.
type ForeignError struct {
	Path       string
	Have, Want Identity
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("store %s belongs to corp %q, app %q, form %q, but the config names corp %q, app %q, form %q; "+
		"point `store:` at a new path; the next sync or rebuild adopts the form's records by key",
		e.Path, e.Have.CorpID, e.Have.AppID, e.Have.EntryID, e.Want.CorpID, e.Want.AppID, e.Want.EntryID)
}

// Options tunes Open.
type Options struct {
	// ReadOnly opens with a shared lock and writes no file at all (dry run,
	// status, verify without --fix). A missing store is an error wrapping
	// os.ErrNotExist and is not created.
	ReadOnly bool
	// Timeout bounds the wait for the file lock (default 1s). Open never
	// blocks forever.
	Timeout time.Duration
	// Command is recorded in the lock-info file, so a blocked run can say
	// who holds the store.
	Command string
	// Now is the clock for the lock-info start time (default time.Now).
	Now func() time.Time
}

// DefaultTimeout is the lock wait used when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Store is an open checkpoint store. Its methods are safe for concurrent use.
type Store struct {
	db       *bbolt.DB
	path     string
	readOnly bool
	stale    *LockInfo
	// migration is what Open upgraded; nil when nothing was.
	migration *Migration
	maxRuns   int
	// testHookApply runs inside Apply's transaction just before commit; tests
	// use it to crash a process mid-transaction.
	testHookApply func()
}

// Bucket and meta key names. Keys sort well: months as YYYY-MM, runs by a
// time-ordered id.
const (
	bucketMeta    = "meta"
	bucketPending = "pending"
	bucketMonths  = "months"
	bucketRuns    = "runs"
	recPrefix     = "rec/"

	metaSchema   = "schema"
	metaIdentity = "identity"

	defaultMaxRuns = 1000
	// recFillPercent packs rec/* pages nearly full: userids arrive sorted, so
	// pages are appended to, rarely split in the middle.
	recFillPercent = 0.95
	// pendingFillPercent packs pages of new pending records less: each is
	// soon rewritten as synced, a third larger with its data_id, and the
	// room left lets that rewrite stay in its page instead of splitting
	// every page the batch touched.
	pendingFillPercent = 0.70
	// allocSize bounds how far the file grows past its data, which keeps
	// bytes per record low on large stores.
	allocSize = 1 << 20
	fileMode  = 0o600
)

// migration turns a store of schema n into schema n+1 inside one write
// transaction. It notes what it could not carry over (such as records it
// dropped) in m, which Store.Migration hands to the caller.
type migration func(tx *bbolt.Tx, m *Migration) error

// opener holds the schema migrations; migrations[i] upgrades schema i+1 to
// i+2, so the current schema is len(migrations)+1.
type opener struct {
	migrations []migration
}

func (o opener) version() int { return len(o.migrations) + 1 }

// Open opens (or, unless read-only, creates) the store at path.
//
// A lock held by another process for longer than Timeout gives a
// *LockedError. A file that is not a checkin-sync store gives ErrCorrupt and
// is never modified. An older schema is copied to path+".bak" and migrated;
// a newer one gives ErrNewerSchema.
func Open(path string, opts Options) (*Store, error) {
	return opener{migrations: migrations()}.open(path, opts)
}

func (o opener) open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if path == "" {
		return nil, errors.New("store path is empty")
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("open store read-only: %w", err)
		}
		if err := createFile(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("open store: %w", err)
	case fi.IsDir():
		return nil, fmt.Errorf("open store: %s %w", path, ErrIsDirectory)
	case fi.Size() == 0:
		// Only a crash while the store was being created leaves an empty
		// file: there is nothing in it to lose.
		if opts.ReadOnly {
			return nil, fmt.Errorf("open store read-only: %s is empty: %w", path, os.ErrNotExist)
		}
	default:
		if err := preflight(path); err != nil {
			return nil, err
		}
	}

	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly, maxRuns: defaultMaxRuns}
	if !opts.ReadOnly {
		db.AllocSize = allocSize
		stale, err := claimLockInfo(path, LockInfo{PID: os.Getpid(), Started: opts.Now(), Command: opts.Command})
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		s.stale = stale
	}
	if err := o.checkSchema(s); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// createFile creates an empty store file 0600, whatever the umask, so that
// bbolt never gets to pick the mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create store directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if errors.Is(err, os.ErrExist) {
		return nil // another process just created it; bbolt sorts it out under the lock
	}
	if err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	if err := f.Chmod(fileMode); err != nil {
		_ = f.Close()
		return fmt.Errorf("create store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	return nil
}

// openBolt opens the bbolt file, turning a lock timeout into *LockedError
// and a damaged file (including a panic or a memory fault while bbolt reads
// it) into ErrCorrupt.
func openBolt(path string, opts Options) (db *bbolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(path, &err)
	db, err = bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout:  opts.Timeout,
		ReadOnly: opts.ReadOnly,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &LockedError{Path: path, Info: holderInfo(path)}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corruptf(path, "not a bbolt database (%v)", err)
	}
	return nil, fmt.Errorf("open store %s: %w", path, err)
}

// corruptf builds an ErrCorrupt that names the file and promises it was left
// alone, which every corrupt path guarantees.
func corruptf(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; the file was not modified", ErrCorrupt, path, fmt.Sprintf(format, args...))
}

// recoverCorrupt turns a panic (bbolt panics on damaged pages; a fault in
// its memory map panics once SetPanicOnFault is on) into ErrCorrupt. It must
// be deferred directly.
func recoverCorrupt(path string, err *error) {
	if r := recover(); r != nil {
		*err = corruptf(path, "%v", r)
	}
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.readOnly }

// StaleLockInfo returns the lock-info a dead process left behind, which Open
// overwrote; nil when there was none. The caller warns about it.
func (s *Store) StaleLockInfo() *LockInfo { return s.stale }

// Close releases the store. The lock-info file goes first, while the flock
// is still held, so it can never delete the next holder's file.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	var errs []error
	if !s.readOnly {
		if err := os.Remove(LockInfoPath(s.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove lock-info: %w", err))
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	s.db = nil
	return errors.Join(errs...)
}

// view runs fn in a read transaction, recovering panics from damaged pages.
func (s *Store) view(fn func(tx *bbolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	if s.db == nil {
		return errors.New("store is closed")
	}
	return s.db.View(fn)
}

// update runs fn in one write transaction; an error or a panic rolls the
// whole transaction back.
func (s *Store) update(fn func(tx *bbolt.Tx) error) (err error) {
	if s.readOnly {
		return ErrReadOnly
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	if s.db == nil {
		return errors.New("store is closed")
	}
	return s.db.Update(fn)
}

// checkSchema initialises a new store, refuses a newer or foreign one and
// migrates an older one after backing it up.
func (o opener) checkSchema(s *Store) error {
	var have int
	var fresh bool
	err := s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			var other bool
			_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { other = true; return nil })
			if other {
				return corruptf(s.path, "a bbolt database but not a checkin-sync store (no meta bucket)")
			}
			fresh = true
			return nil
		}
		v := meta.Get([]byte(metaSchema))
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 {
			return corruptf(s.path, "bad schema version %q", v)
		}
		have = n
		return nil
	})
	if err != nil {
		return err
	}
	want := o.version()
	switch {
	case fresh:
		if s.readOnly {
			return nil // an empty store reads as empty
		}
		return s.update(func(tx *bbolt.Tx) error {
			for _, name := range []string{bucketMeta, bucketPending, bucketMonths, bucketRuns} {
				if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
					return fmt.Errorf("init store: %w", err)
				}
			}
			return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(strconv.Itoa(want)))
		})
	case have > want:
		return fmt.Errorf("%w: %s has schema v%d, this checkin-sync knows up to v%d; upgrade checkin-sync to use it",
			ErrNewerSchema, s.path, have, want)
	case have < want:
		if s.readOnly {
			return fmt.Errorf("%w: %s has schema v%d, this checkin-sync uses v%d; a read-only command cannot migrate it, "+
				"run a sync first (it keeps a copy in %s)", ErrNeedsMigration, s.path, have, want, BackupPath(s.path))
		}
		if err := s.backup(); err != nil {
			return fmt.Errorf("back up store %s before migrating it: %w", s.path, err)
		}
		var m *Migration
		err := s.update(func(tx *bbolt.Tx) error {
			m = &Migration{From: have, To: want, Backup: BackupPath(s.path)}
			for v := have; v < want; v++ {
				if err := o.migrations[v-1](tx, m); err != nil {
					return fmt.Errorf("migrate store %s from schema v%d to v%d: %w", s.path, v, v+1, err)
				}
			}
			meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
			if err != nil {
				return err
			}
			return meta.Put([]byte(metaSchema), []byte(strconv.Itoa(want)))
		})
		if err != nil {
			return err
		}
		s.migration = m
	}
	return nil
}

// BackupPath is where a store is copied before a migration.
func BackupPath(storePath string) string { return storePath + ".bak" }

// backup copies a consistent snapshot of the store to BackupPath, synced to
// disk before any migration touches the original.
func (s *Store) backup() error {
	return s.view(func(tx *bbolt.Tx) error {
		return writeAtomic(BackupPath(s.path), func(f *os.File) error {
			_, err := tx.WriteTo(f)
			return err
		})
	})
}

// Bind ties the store to a corp, app and form. The first Bind on a writable
// store records the identity; afterwards, and on a read-only store, it only
// compares, returning *ForeignError on a mismatch.
func (s *Store) Bind(id Identity) error {
	if id.CorpID == "" || id.AppID == "" || id.EntryID == "" {
		return fmt.Errorf("bind store: identity needs corp_id, app_id and entry_id, got %+v", id)
	}
	check := func(tx *bbolt.Tx) (bool, error) {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return false, nil
		}
		v := meta.Get([]byte(metaIdentity))
		if v == nil {
			return false, nil
		}
		var have identityV1
		if err := json.Unmarshal(v, &have); err != nil {
			return false, corruptf(s.path, "bad identity in meta: %v", err)
		}
		if h := have.identity(); h != id {
			return true, &ForeignError{Path: s.path, Have: h, Want: id}
		}
		return true, nil
	}
	if s.readOnly {
		return s.view(func(tx *bbolt.Tx) error {
			_, err := check(tx)
			return err
		})
	}
	return s.update(func(tx *bbolt.Tx) error {
		bound, err := check(tx)
		if err != nil || bound {
			return err
		}
		v, err := json.Marshal(identityV1(id))
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		return meta.Put([]byte(metaIdentity), v)
	})
}

type identityV1 struct {
	CorpID  string `json:"corp_id"`
	AppID   string `json:"app_id"`
	EntryID string `json:"entry_id"`
}

func (i identityV1) identity() Identity { return Identity(i) }

func reservedMeta(key string) error {
	switch key {
	case "":
		return errors.New("meta key is empty")
	case metaSchema, metaIdentity:
		return fmt.Errorf("meta key %q is reserved", key)
	}
	return nil
}

// GetMeta returns a copy of a small app value (mapping fingerprint, alert
// state), or nil when it is not set.
func (s *Store) GetMeta(key string) ([]byte, error) {
	if err := reservedMeta(key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
			if v := meta.Get([]byte(key)); v != nil {
				out = append([]byte{}, v...)
			}
		}
		return nil
	})
	return out, err
}

// PutMeta sets a small app value; a nil value deletes it.
func (s *Store) PutMeta(key string, v []byte) error {
	if err := reservedMeta(key); err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return err
		}
		if v == nil {
			return meta.Delete([]byte(key))
		}
		return meta.Put([]byte(key), v)
	})
}

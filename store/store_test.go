package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 3, 5, 2, 0, 4, 0, time.UTC)

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "checkin.db")
}

func mustOpen(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func hexID(i int) string { return fmt.Sprintf("%024x", 0x5f3a00000000+i) }

func synced(m, uid string, i int) KeyedRecord {
	return KeyedRecord{Month: m, UserID: uid, Record: Record{
		Hash: uint64(i) * 0x9e3779b97f4a7c15, DataID: hexID(i), State: StateSynced, Attempts: 1,
		SyncedAt: t0.Add(time.Duration(i) * time.Second),
	}}
}

func fileMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s: mode %o, want 600", filepath.Base(path), got)
	}
}

func TestOpenCreatesVersionedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "checkin.db")
	s := mustOpen(t, path, Options{Command: "sync"})
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
	if s.StaleLockInfo() != nil {
		t.Errorf("StaleLockInfo = %+v on a fresh store", s.StaleLockInfo())
	}
	fileMode0600(t, path)
	fileMode0600(t, LockInfoPath(path))
	li, err := readLockInfo(path)
	if err != nil || li == nil {
		t.Fatalf("lock-info: %v %v", li, err)
	}
	if li.PID != os.Getpid() || li.Command != "sync" || !li.Started.Equal(t0) {
		t.Errorf("lock-info = %+v", li)
	}
	var schema string
	_ = s.view(func(tx *bbolt.Tx) error {
		schema = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		return nil
	})
	if want := strconv.Itoa(schemaLowerUserIDs); schema != want {
		t.Errorf("schema = %q, want %s", schema, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(LockInfoPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock-info still there after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReadOnlyMissingStore(t *testing.T) {
	path := tempPath(t)
	_, err := Open(path, Options{ReadOnly: true})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Errorf("read-only open created files: %v", entries)
	}
}

func TestReadOnlyWritesNothing(t *testing.T) {
	path := tempPath(t)
	w := mustOpen(t, path, Options{})
	if err := w.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	r := mustOpen(t, path, Options{ReadOnly: true})
	if _, err := os.Stat(LockInfoPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open wrote a lock-info file")
	}
	for name, err := range map[string]error{
		"Apply":      r.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "bob", 2)}}),
		"ResetMonth": r.ResetMonth("2026-03"),
		"PutRun":     r.PutRun(Run{ID: NewRunID(t0)}),
		"PutMeta":    r.PutMeta("x", []byte("y")),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on read-only store: %v, want ErrReadOnly", name, err)
		}
	}
	var out [1]Record
	var found [1]bool
	if err := r.Lookup("2026-03", []string{"alice"}, out[:], found[:]); err != nil || !found[0] {
		t.Errorf("Lookup on read-only: %v %v", found, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("read-only session changed the file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files beside the store: %v", entries)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := tempPath(t)
	mustOpen(t, path, Options{Command: "sync"})

	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{Timeout: 50 * time.Millisecond, ReadOnly: ro})
		var le *LockedError
		if !errors.As(err, &le) {
			t.Fatalf("readOnly=%v: err = %v, want *LockedError", ro, err)
		}
		if le.Info == nil || le.Info.PID != os.Getpid() || le.Info.Command != "sync" || !le.Info.Started.Equal(t0) {
			t.Fatalf("readOnly=%v: Info = %+v", ro, le.Info)
		}
		msg := le.Error()
		for _, want := range []string{path, fmt.Sprint(os.Getpid()), t0.Format(time.RFC3339), "sync"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
	}
}

func TestReadOnlyHolderLocksWriters(t *testing.T) {
	path := tempPath(t)
	w := mustOpen(t, path, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, Options{ReadOnly: true})
	// Two readers share the lock.
	mustOpen(t, path, Options{ReadOnly: true, Timeout: 50 * time.Millisecond})

	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want *LockedError", err)
	}
	if le.Info != nil {
		t.Errorf("Info = %+v, want nil for a read-only holder", le.Info)
	}
	if !strings.Contains(le.Error(), "read-only command") {
		t.Errorf("message %q does not name a read-only holder", le.Error())
	}
}

func TestLockInfoOfDeadProcessIsNotBlamed(t *testing.T) {
	path := tempPath(t)
	w := mustOpen(t, path, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, Options{ReadOnly: true})
	// A crashed writer's leftover file must not be reported as the holder.
	if _, err := claimLockInfo(path, LockInfo{PID: deadPID(t), Started: t0, Command: "sync"}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	var le *LockedError
	if !errors.As(err, &le) || le.Info != nil {
		t.Fatalf("err = %v (info %+v), want *LockedError with nil Info", err, le)
	}
}

func TestStaleLockInfoOverwritten(t *testing.T) {
	path := tempPath(t)
	w := mustOpen(t, path, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	old := LockInfo{PID: deadPID(t), Started: t0.Add(-time.Hour), Command: "serve"}
	if _, err := claimLockInfo(path, old); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path, Options{Command: "sync"})
	got := s.StaleLockInfo()
	if got == nil || got.PID != old.PID || got.Command != "serve" || !got.Started.Equal(old.Started) {
		t.Fatalf("StaleLockInfo = %+v, want %+v", got, old)
	}
	li, _ := readLockInfo(path)
	if li == nil || li.PID != os.Getpid() || li.Command != "sync" {
		t.Errorf("lock-info not overwritten: %+v", li)
	}
	fileMode0600(t, LockInfoPath(path))
}

func TestBindIdentity(t *testing.T) {
	path := tempPath(t)
	a := Identity{CorpID: "wwcorp", AppID: "app1", EntryID: "entry1"}
	b := Identity{CorpID: "wwcorp", AppID: "app1", EntryID: "entry2"}

	// Read-only on an unbound store: check only, nothing recorded.
	w := mustOpen(t, path, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, path, Options{ReadOnly: true})
	if err := r.Bind(a); err != nil {
		t.Fatalf("read-only Bind on unbound store: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	w = mustOpen(t, path, Options{})
	if err := w.Bind(b); err != nil { // b is recorded, proving the read-only Bind(a) wrote nothing
		t.Fatal(err)
	}
	if err := w.Bind(b); err != nil {
		t.Fatalf("same identity again: %v", err)
	}
	err := w.Bind(a)
	var fe *ForeignError
	if !errors.As(err, &fe) || fe.Have != b || fe.Want != a {
		t.Fatalf("Bind(other) = %v, want *ForeignError{Have: b, Want: a}", err)
	}
	for _, want := range []string{"entry1", "entry2", "point `store:` at a new path", "adopts the form's records by key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r = mustOpen(t, path, Options{ReadOnly: true})
	if err := r.Bind(a); !errors.As(err, &fe) {
		t.Errorf("read-only Bind(other) = %v, want *ForeignError", err)
	}
	if err := r.Bind(b); err != nil {
		t.Errorf("read-only Bind(same) = %v", err)
	}
	if err := r.Bind(Identity{CorpID: "x"}); err == nil {
		t.Errorf("incomplete identity accepted")
	}
}

func TestMeta(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if v, err := s.GetMeta("fingerprint"); err != nil || v != nil {
		t.Fatalf("GetMeta unset = %q, %v", v, err)
	}
	if err := s.PutMeta("fingerprint", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("fingerprint"); err != nil || string(v) != "abc" {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	if err := s.PutMeta("fingerprint", nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetMeta("fingerprint"); v != nil {
		t.Errorf("deleted meta = %q", v)
	}
	for _, k := range []string{"", metaSchema, metaIdentity} {
		if err := s.PutMeta(k, []byte("1")); err == nil {
			t.Errorf("PutMeta(%q) accepted", k)
		}
		if _, err := s.GetMeta(k); err == nil {
			t.Errorf("GetMeta(%q) accepted", k)
		}
	}
}

func TestApplyAndLookup(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	recs := []KeyedRecord{
		synced("2026-03", "alice", 1),
		{Month: "2026-03", UserID: "bob", Record: Record{Hash: 7, State: StatePending}},
		{Month: "2026-03", UserID: "carol", Record: Record{Hash: 8, DataID: "not-a-hex-id", State: StateFailed, Attempts: 3,
			LastError: strings.Repeat("é", 150)}},
		synced("2026-04", "alice", 4),
	}
	if err := s.Apply(&Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	uids := []string{"carol", "nobody", "alice", "bob", ""}
	out := make([]Record, len(uids))
	found := make([]bool, len(uids))
	out[1] = Record{Hash: 99} // a miss must clear a reused slot
	if err := s.Lookup("2026-03", uids, out, found); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, true, false}; !reflect.DeepEqual(found, want) {
		t.Fatalf("found = %v, want %v", found, want)
	}
	if !reflect.DeepEqual(out[2], recs[0].Record) {
		t.Errorf("alice = %+v, want %+v", out[2], recs[0].Record)
	}
	if !reflect.DeepEqual(out[3], recs[1].Record) {
		t.Errorf("bob = %+v, want %+v", out[3], recs[1].Record)
	}
	if out[0].DataID != "not-a-hex-id" || out[0].State != StateFailed || out[0].Attempts != 3 {
		t.Errorf("carol = %+v", out[0])
	}
	if len(out[0].LastError) > MaxLastError || !strings.HasPrefix(recs[2].Record.LastError, out[0].LastError) || len(out[0].LastError) < MaxLastError-1 {
		t.Errorf("last error not cut to %d bytes at a rune boundary: %d bytes", MaxLastError, len(out[0].LastError))
	}
	if out[1] != (Record{}) {
		t.Errorf("miss left %+v", out[1])
	}
	if err := s.Lookup("2026-05", []string{"alice"}, out, found); err != nil || found[0] {
		t.Errorf("Lookup in unknown month: %v %v", found[0], err)
	}
	if err := s.Lookup("2026-03", uids, out[:1], found); err == nil {
		t.Errorf("short out slice accepted")
	}
	if err := s.Lookup("2026-3", uids[:1], out, found); err == nil {
		t.Errorf("bad month accepted")
	}

	var seen []string
	if err := s.ForEach("2026-03", func(uid string, r Record) error {
		seen = append(seen, uid+":"+r.State.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice:synced", "bob:pending", "carol:failed"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("ForEach = %v, want %v", seen, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ForEach("2026-03", func(string, Record) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ForEach stop: %v after %d", err, n)
	}
}

func TestApplyIsAtomic(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	bad := &Write{
		Records: []KeyedRecord{
			synced("2026-03", "alice", 2),
			synced("2026-03", "bob", 3),
			{Month: "2026-03", UserID: "carol", Record: Record{State: 0}}, // invalid state, third in line
		},
		PutPending: []Pending{{TxID: "tx1", Month: "2026-03", UserIDs: []string{"dave"}, Hashes: []uint64{1}, FirstSentAt: t0}},
	}
	if err := s.Apply(bad); err == nil {
		t.Fatal("Apply with an invalid record succeeded")
	}
	out := make([]Record, 2)
	found := make([]bool, 2)
	if err := s.Lookup("2026-03", []string{"alice", "bob"}, out, found); err != nil {
		t.Fatal(err)
	}
	if !found[0] || out[0].Hash != synced("", "", 1).Record.Hash || found[1] {
		t.Errorf("failed Apply left changes: %+v %v", out, found)
	}
	if ps, _ := s.Pendings(); len(ps) != 0 {
		t.Errorf("failed Apply left pending batches: %+v", ps)
	}
	if mi, _, _ := s.Month("2026-03"); mi.Synced != 1 || mi.Pending+mi.Failed != 0 {
		t.Errorf("failed Apply moved counts: %+v", mi)
	}

	// A failure inside a write transaction, after writes, leaves nothing.
	boom := errors.New("boom")
	err := s.update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(recBucket("2026-03")).Delete([]byte("alice")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update err = %v", err)
	}
	if err := s.Lookup("2026-03", []string{"alice"}, out, found); err != nil || !found[0] {
		t.Errorf("rolled-back delete took effect: %v %v", found[0], err)
	}

	// A panic inside a write transaction rolls back too, and is reported as
	// corruption rather than crashing the process.
	err = s.update(func(tx *bbolt.Tx) error {
		_ = tx.Bucket(recBucket("2026-03")).Delete([]byte("alice"))
		panic("damaged page")
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("panic in update: %v, want ErrCorrupt", err)
	}
	if err := s.Lookup("2026-03", []string{"alice"}, out, found); err != nil || !found[0] {
		t.Errorf("rolled-back delete after panic took effect: %v %v", found[0], err)
	}
}

func TestPendings(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	p1 := Pending{TxID: "b-later", Month: "2026-03", UserIDs: []string{"u2", "u1"}, Hashes: []uint64{^uint64(0), 1}, FirstSentAt: t0.Add(time.Minute)}
	p2 := Pending{TxID: "a-first", Month: "2026-04", UserIDs: []string{"u3"}, Hashes: []uint64{3}, FirstSentAt: t0}
	if err := s.Apply(&Write{PutPending: []Pending{p1, p2}}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Pendings()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].TxID != "a-first" || ps[1].TxID != "b-later" {
		t.Fatalf("Pendings = %+v", ps)
	}
	if !reflect.DeepEqual(ps[1].UserIDs, p1.UserIDs) || !reflect.DeepEqual(ps[1].Hashes, p1.Hashes) || !ps[1].FirstSentAt.Equal(p1.FirstSentAt) {
		t.Errorf("round trip: %+v, want %+v", ps[1], p1)
	}
	// Commit: records synced and the batch gone, together.
	w := &Write{
		Records:       []KeyedRecord{synced("2026-03", "u1", 1), synced("2026-03", "u2", 2)},
		DeletePending: []string{"b-later"},
	}
	if err := s.Apply(w); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.Pendings(); len(ps) != 1 || ps[0].TxID != "a-first" {
		t.Errorf("after commit: %+v", ps)
	}
	for _, bad := range []Pending{
		{Month: "2026-03", UserIDs: []string{"u"}, Hashes: []uint64{1}},
		{TxID: "x", Month: "2026-13", UserIDs: []string{"u"}, Hashes: []uint64{1}},
		{TxID: "x", Month: "2026-03", UserIDs: []string{"u"}},
	} {
		if err := s.Apply(&Write{PutPending: []Pending{bad}}); err == nil {
			t.Errorf("bad pending accepted: %+v", bad)
		}
	}
}

func TestMonthInfoAndWatermark(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if _, found, err := s.Month("2026-03"); err != nil || found {
		t.Fatalf("unknown month: found=%v err=%v", found, err)
	}
	recs := []KeyedRecord{
		synced("2026-03", "a", 1),
		synced("2026-03", "b", 2),
		{Month: "2026-03", UserID: "c", Record: Record{Hash: 3, State: StatePending}},
	}
	if err := s.Apply(&Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	mi, found, err := s.Month("2026-03")
	if err != nil || !found {
		t.Fatalf("Month: %v %v", found, err)
	}
	if mi.Synced != 2 || mi.Pending != 1 || mi.Failed != 0 || mi.LastRunID != "" || mi.Watermark != "" {
		t.Errorf("after records only: %+v", mi)
	}

	runStart := t0.Add(-time.Minute)
	info := MonthInfo{Month: "2026-03", Watermark: "2026-03-04", Dirty: true, LastRunID: "r1", LastRunStart: runStart,
		Synced: 1000, Pending: 1000} // counts are the store's, these are ignored
	fail := KeyedRecord{Month: "2026-03", UserID: "c", Record: Record{Hash: 3, State: StateFailed, LastError: "bad"}}
	if err := s.Apply(&Write{Records: []KeyedRecord{fail}, Months: []MonthInfo{info}}); err != nil {
		t.Fatal(err)
	}
	mi, _, _ = s.Month("2026-03")
	want := MonthInfo{Month: "2026-03", Watermark: "2026-03-04", Synced: 2, Failed: 1, Dirty: true, LastRunID: "r1", LastRunStart: runStart}
	if !reflect.DeepEqual(normalize(mi), normalize(want)) {
		t.Errorf("Month = %+v, want %+v", mi, want)
	}
	if sy, pe, fa, err := s.Count("2026-03"); err != nil || sy != 2 || pe != 0 || fa != 1 {
		t.Errorf("Count = %d %d %d %v", sy, pe, fa, err)
	}

	// Backwards is ignored, forwards moves.
	info.Watermark = "2026-03-02"
	info.Dirty = false
	if err := s.Apply(&Write{Months: []MonthInfo{info}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ = s.Month("2026-03"); mi.Watermark != "2026-03-04" || mi.Dirty {
		t.Errorf("after earlier watermark: %+v", mi)
	}
	info.Watermark = "2026-03-31"
	info.LastSuccess = t0
	if err := s.Apply(&Write{Months: []MonthInfo{info}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ = s.Month("2026-03"); mi.Watermark != "2026-03-31" || !mi.LastSuccess.Equal(t0) || mi.Synced != 2 || mi.Failed != 1 {
		t.Errorf("after later watermark: %+v", mi)
	}
	for _, bad := range []MonthInfo{
		{Month: "2026-03", Watermark: "2026-04-01"},
		{Month: "2026-03", Watermark: "2026-3-1"},
		{Month: "March"},
	} {
		if err := s.Apply(&Write{Months: []MonthInfo{bad}}); err == nil {
			t.Errorf("bad month info accepted: %+v", bad)
		}
	}

	// A month info for a month without records is listed too.
	if err := s.Apply(&Write{Months: []MonthInfo{{Month: "2026-01", LastRunID: "r1", LastRunStart: runStart}}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Months()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Month != "2026-01" || all[1].Month != "2026-03" || all[0].Synced != 0 {
		t.Errorf("Months = %+v", all)
	}
}

// normalize drops monotonic clock readings and locations so DeepEqual
// compares instants.
func normalize(mi MonthInfo) MonthInfo {
	mi.LastRunStart = mi.LastRunStart.UTC().Round(0)
	mi.LastSuccess = mi.LastSuccess.UTC().Round(0)
	return mi
}

func TestCountsRepairThemselves(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "a", 1), synced("2026-03", "b", 2)}}); err != nil {
		t.Fatal(err)
	}
	// Knock the stored counts out of step, as a bug or an old version might.
	if err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMonths)).Put([]byte("2026-03"), []byte(`{"synced":0}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(&Write{Records: []KeyedRecord{{Month: "2026-03", UserID: "a", Record: Record{State: StateFailed}}}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-03"); mi.Synced != 1 || mi.Failed != 1 {
		t.Errorf("counts not recounted: %+v", mi)
	}
}

// Reset forgets a month's records, watermark and months entry, and keeps
// its pending batches, with their keys marked pending, for the next sync
// to resolve; other months are untouched.
func TestResetMonth(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	w := &Write{
		Records: []KeyedRecord{synced("2026-03", "a", 1), synced("2026-03", "c", 3), synced("2026-04", "a", 2),
			{Month: "2026-03", UserID: "b", Record: Record{Hash: 7, State: StatePending}}},
		PutPending: []Pending{
			{TxID: "t3", Month: "2026-03", UserIDs: []string{"b"}, Hashes: []uint64{7}, FirstSentAt: t0},
			{TxID: "t4", Month: "2026-04", UserIDs: []string{"b"}, Hashes: []uint64{1}, FirstSentAt: t0},
		},
		Months: []MonthInfo{{Month: "2026-03", Watermark: "2026-03-31", LastRunID: "r", InProgress: true, Dirty: true},
			{Month: "2026-04", Watermark: "2026-04-30", LastRunID: "r"}},
	}
	if err := s.Apply(w); err != nil {
		t.Fatal(err)
	}
	f, err := s.ForgetMonth("2026-03")
	if err != nil {
		t.Fatal(err)
	}
	if f != (Forgotten{Known: true, Records: 2, KeptBatches: 1, KeptRecords: 1}) {
		t.Errorf("forgotten: %+v", f)
	}
	if f, err := s.ForgetMonth("2025-01"); err != nil || f != (Forgotten{}) {
		t.Errorf("reset of an unknown month: %+v %v", f, err)
	}
	if mi, found, _ := s.Month("2026-03"); !found || mi != (MonthInfo{Month: "2026-03", Pending: 1}) {
		t.Errorf("months entry after reset: %+v (found %v), want only the kept pending count", mi, found)
	}
	if sy, pe, fa, _ := s.Count("2026-03"); sy != 0 || pe != 1 || fa != 0 {
		t.Errorf("records after reset: synced %d pending %d failed %d, want only the pending one", sy, pe, fa)
	}
	out, found := make([]Record, 1), make([]bool, 1)
	if err := s.Lookup("2026-03", []string{"b"}, out, found); err != nil || !found[0] || out[0] != (Record{Hash: 7, State: StatePending}) {
		t.Errorf("kept pending record: %+v %v %v", out[0], found[0], err)
	}
	if ps, _ := s.Pendings(); len(ps) != 2 || ps[0].TxID != "t3" || ps[1].TxID != "t4" {
		t.Errorf("pendings after reset: %+v", ps)
	}
	if mi, found, _ := s.Month("2026-04"); !found || mi.Watermark != "2026-04-30" || mi.Synced != 1 {
		t.Errorf("other month touched: %+v", mi)
	}
	// After a reset the watermark starts again from nothing.
	if err := s.Apply(&Write{Months: []MonthInfo{{Month: "2026-03", Watermark: "2026-03-10", LastRunID: "r2"}}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-03"); mi.Watermark != "2026-03-10" {
		t.Errorf("watermark after reset: %q", mi.Watermark)
	}
	// A month with records and no pending batch is forgotten entirely.
	if err := s.Apply(&Write{DeletePending: []string{"t4"}}); err != nil {
		t.Fatal(err)
	}
	if f, err := s.ForgetMonth("2026-04"); err != nil || f != (Forgotten{Known: true, Records: 1}) {
		t.Errorf("reset of 2026-04: %+v %v", f, err)
	}
	if _, found, _ := s.Month("2026-04"); found {
		t.Errorf("months entry survived reset")
	}
	if sy, pe, fa, _ := s.Count("2026-04"); sy+pe+fa != 0 {
		t.Errorf("records survived reset")
	}
	if err := s.ResetMonth("bad"); err == nil {
		t.Errorf("bad month accepted")
	}
}

// InProgress is kept in the months entry, and an entry written before it
// existed reads as not in progress.
func TestMonthInProgressRoundTrip(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	in := MonthInfo{Month: "2026-03", InProgress: true, LastRunID: "r", LastRunStart: t0}
	if err := s.Apply(&Write{Months: []MonthInfo{in}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-03"); mi != in {
		t.Errorf("read back %+v, want %+v", mi, in)
	}
	in.InProgress = false
	if err := s.Apply(&Write{Months: []MonthInfo{in}}); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-03"); mi != in {
		t.Errorf("cleared: read back %+v", mi)
	}
	old := []byte(`{"watermark":"2026-03-31","synced":0,"pending":0,"failed":0,"dirty":true,"last_run_id":"r"}`)
	if err := s.update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(bucketMonths)).Put([]byte("2026-04"), old) }); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-04"); mi != (MonthInfo{Month: "2026-04", Watermark: "2026-03-31", Dirty: true, LastRunID: "r"}) {
		t.Errorf("entry without in_progress: %+v", mi)
	}
}

// CheckIdentity compares without binding: an unbound store stays unbound.
func TestCheckIdentityNeverBinds(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	id := Identity{CorpID: "ww1", AppID: "a", EntryID: "e"}
	if err := s.CheckIdentity(id); err != nil {
		t.Fatalf("unbound store: %v", err)
	}
	if err := s.Bind(Identity{CorpID: "ww2", AppID: "a", EntryID: "e"}); err != nil {
		t.Fatalf("the check bound the store: %v", err)
	}
	var fe *ForeignError
	if err := s.CheckIdentity(id); !errors.As(err, &fe) {
		t.Errorf("another corp: %v, want *ForeignError", err)
	}
	if err := s.CheckIdentity(Identity{AppID: "a", EntryID: "e"}); err != nil {
		t.Errorf("an identity with an unknown part is not compared: %v", err)
	}
}

func TestRunsPrunedNewestFirst(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	const total = defaultMaxRuns + 3
	ids := make([]string, total)
	// One transaction for the bulk, then PutRun for the last ones, so the
	// pruning path is the real one.
	if err := s.update(func(tx *bbolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte(bucketRuns))
		for i := 0; i < total-2; i++ {
			ids[i] = NewRunID(t0.Add(time.Duration(i) * time.Minute))
			if err := b.Put([]byte(ids[i]), []byte(`{"command":"sync","outcome":"success"}`)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := total - 2; i < total; i++ {
		ids[i] = NewRunID(t0.Add(time.Duration(i) * time.Minute))
		r := Run{ID: ids[i], Command: "sync", Start: t0, Months: []string{"2026-03"}, Created: i,
			Calls: map[string]int{"data/list": 2}, Outcome: "running"}
		if err := s.PutRun(r); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != defaultMaxRuns {
		t.Fatalf("kept %d runs, want %d", len(runs), defaultMaxRuns)
	}
	if runs[0].ID != ids[total-1] || runs[len(runs)-1].ID != ids[total-defaultMaxRuns] {
		t.Errorf("order or pruning wrong: first %s last %s", runs[0].ID, runs[len(runs)-1].ID)
	}
	for i := 1; i < len(runs); i++ {
		if runs[i-1].ID <= runs[i].ID {
			t.Fatalf("not newest first at %d", i)
		}
	}
	// Replace by id: the count stays, the content changes.
	last := runs[0]
	last.Outcome, last.End, last.ExitCode = "partial", t0.Add(time.Hour), 1
	if err := s.PutRun(last); err != nil {
		t.Fatal(err)
	}
	top, err := s.Runs(2)
	if err != nil || len(top) != 2 {
		t.Fatalf("Runs(2) = %d, %v", len(top), err)
	}
	if top[0].ID != last.ID || top[0].Outcome != "partial" || top[0].ExitCode != 1 || top[0].Calls["data/list"] != 2 || top[0].Created != total-1 {
		t.Errorf("replaced run = %+v", top[0])
	}
	if all, _ := s.Runs(0); len(all) != defaultMaxRuns {
		t.Errorf("replace changed the count to %d", len(all))
	}
	if err := s.PutRun(Run{}); err == nil {
		t.Errorf("run without id accepted")
	}
}

func TestNewRunIDSortsByTime(t *testing.T) {
	a := NewRunID(time.Date(2026, 1, 2, 3, 4, 5, 999_000, time.FixedZone("X", 8*3600)))
	b := NewRunID(time.Date(2026, 1, 2, 3, 4, 6, 0, time.FixedZone("X", 8*3600)))
	c := NewRunID(time.Date(2026, 1, 2, 3, 4, 6, 0, time.FixedZone("X", 8*3600)))
	if !(a < b) || b == c || len(a) != len(b) {
		t.Errorf("ids %s %s %s", a, b, c)
	}
}

func TestLiveFile(t *testing.T) {
	path := tempPath(t)
	type live struct {
		PID  int `json:"pid"`
		Done int `json:"done"`
	}
	var got live
	if err := ReadLive(path, &got); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadLive with none: %v", err)
	}
	if err := RemoveLive(path); err != nil {
		t.Errorf("RemoveLive with none: %v", err)
	}
	for i := 1; i <= 3; i++ {
		if err := WriteLive(path, live{PID: 42, Done: i}); err != nil {
			t.Fatal(err)
		}
	}
	if LivePath(path) != path+".live" {
		t.Errorf("LivePath = %s", LivePath(path))
	}
	fileMode0600(t, LivePath(path))
	if err := ReadLive(path, &got); err != nil || got != (live{42, 3}) {
		t.Errorf("ReadLive = %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if err := RemoveLive(path); err != nil {
		t.Fatal(err)
	}
	if err := ReadLive(path, &got); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after remove: %v", err)
	}
}

func TestCorruptFilesRefusedAndUntouched(t *testing.T) {
	dir := t.TempDir()
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	cases := map[string][]byte{
		"text":   []byte("store: ./checkin.db\nthis is a YAML file, not a store\n"),
		"random": random,
		"short":  {0x01, 0x02},
	}

	// A real store, truncated.
	full := filepath.Join(dir, "full.db")
	s := mustOpen(t, full, Options{})
	var recs []KeyedRecord
	for i := 0; i < 5000; i++ {
		recs = append(recs, synced("2026-03", fmt.Sprintf("user%05d", i), i))
	}
	if err := s.Apply(&Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(full)
	var highWater int64
	for _, m := range []int64{0, 4096} {
		bm, ok := parseBoltMeta(data[m:])
		if ok && int64(bm.pgid)*int64(bm.pageSize) > highWater {
			highWater = int64(bm.pgid) * int64(bm.pageSize)
		}
	}
	if highWater == 0 || highWater > int64(len(data)) {
		t.Fatalf("high water %d, file %d", highWater, len(data))
	}
	cases["truncated"] = data[:highWater/2]
	cases["truncated-last-page"] = data[:highWater-4096]

	for name, content := range cases {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", name, ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "checkin.db")
				if err := os.WriteFile(path, content, 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := Open(path, Options{ReadOnly: ro})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not modified") {
					t.Errorf("message %q should name the file and say it was not modified", err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(after, content) {
					t.Errorf("file changed")
				}
				entries, _ := os.ReadDir(filepath.Dir(path))
				if len(entries) != 1 {
					t.Errorf("files left beside it: %v", entries)
				}
			})
		}
	}
}

func TestForeignBoltFileRefused(t *testing.T) {
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-else"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("foreign bbolt file modified")
	}
}

func TestDamagedPagesGiveErrCorrupt(t *testing.T) {
	src := tempPath(t)
	s := mustOpen(t, src, Options{})
	var recs []KeyedRecord
	for i := 0; i < 3000; i++ {
		recs = append(recs, synced("2026-03", fmt.Sprintf("user%05d", i), i))
	}
	if err := s.Apply(&Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clean, _ := os.ReadFile(src)
	// The meta pages stay valid, so Open succeeds and only the transactions
	// that reach the damaged leaf can notice.
	idx := bytes.Index(clean, []byte("user01500"))
	if idx < 0 {
		t.Fatal("key not found in the file")
	}
	page := idx / 4096 * 4096
	damages := map[string]func(p []byte){
		"scribbled": func(p []byte) {
			for i := range p {
				p[i] = byte(0xA5 ^ i)
			}
		},
		"huge-count": func(p []byte) { // header intact but for the element count
			p[10], p[11] = 0xFF, 0xFF
			for i := 16; i < len(p); i++ {
				p[i] = 0xFF
			}
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			data := bytes.Clone(clean)
			damage(data[page : page+4096])
			path := tempPath(t)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			r := mustOpen(t, path, Options{ReadOnly: true})
			if _, _, _, err := r.Count("2026-03"); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Count: %v, want ErrCorrupt", err)
			}
			out := make([]Record, 2)
			found := make([]bool, 2)
			// A point read may land anywhere in garbage; it must not crash,
			// and any error it gives is ErrCorrupt.
			if err := r.Lookup("2026-03", []string{"user00001", "user01500"}, out, found); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Lookup: %v, want nil or ErrCorrupt", err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}

			w := mustOpen(t, path, Options{})
			before, _ := os.ReadFile(path)
			err := w.Apply(&Write{Records: recs[1500:1501]})
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Apply onto the damaged page: %v, want nil or ErrCorrupt", err)
			}
			if after, _ := os.ReadFile(path); err != nil && !bytes.Equal(before, after) {
				t.Errorf("failed Apply changed the file")
			}
		})
	}
}

func TestCorruptRecordValue(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(recBucket("2026-03")).Put([]byte("mallory"), []byte{1, 1, 0, 0, 0})
	}); err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2026-03") || !strings.Contains(err.Error(), "mallory") {
			t.Errorf("%s: %v, want ErrCorrupt naming 2026-03 and mallory", name, err)
		}
	}
	out := make([]Record, 2)
	found := make([]bool, 2)
	check("Lookup", s.Lookup("2026-03", []string{"alice", "mallory"}, out, found))
	check("ForEach", s.ForEach("2026-03", func(string, Record) error { return nil }))
	_, _, _, err := s.Count("2026-03")
	check("Count", err)
	check("Apply over it", s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "mallory", 2)}}))
	// Reset needs no decoding, so it is the way out.
	if err := s.ResetMonth("2026-03"); err != nil {
		t.Fatal(err)
	}
}

func TestForEachCallerPanicIsNotCorruption(t *testing.T) {
	s := mustOpen(t, tempPath(t), Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != "caller bug" {
			t.Errorf("recovered %v, want the caller's panic", r)
		}
	}()
	_ = s.ForEach("2026-03", func(string, Record) error { panic("caller bug") })
	t.Errorf("panic swallowed")
}

func setSchema(t *testing.T, path string, v string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(v))
	}); err != nil {
		t.Fatal(err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	setSchema(t, path, strconv.Itoa(schemaLowerUserIDs+1))
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "upgrade checkin-sync") {
			t.Errorf("readOnly=%v: %v, want ErrNewerSchema telling to upgrade", ro, err)
		}
	}
	if _, err := os.Stat(LockInfoPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused open left a lock-info file")
	}
	setSchema(t, path, "x")
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("garbage schema: %v, want ErrCorrupt", err)
	}
}

// TestOlderSchemaMigrated tests the migration mechanism with a test
// upgrade past the current schema.
func TestOlderSchemaMigrated(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1)}}); err != nil {
		t.Fatal(err)
	}
	if s.Migration() != nil {
		t.Errorf("a new store reports a migration: %+v", s.Migration())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cur := opener{migrations: migrations()}.version()
	next := opener{migrations: append(migrations(), func(tx *bbolt.Tx, _ *Migration) error {
		// A test upgrade: it keeps a marker in meta and drops "runs".
		if err := tx.Bucket([]byte(bucketMeta)).Put([]byte("upgraded"), []byte("yes")); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte(bucketRuns))
	})}

	// Read-only cannot migrate.
	if _, err := next.open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNeedsMigration) {
		t.Fatalf("read-only open of older schema: %v, want ErrNeedsMigration", err)
	}

	// A failing migration leaves the store as it was (the backup is made).
	broken := opener{migrations: append(migrations(), func(tx *bbolt.Tx, _ *Migration) error {
		_ = tx.DeleteBucket([]byte(bucketRuns))
		return errors.New("cannot upgrade")
	})}
	if _, err := broken.open(path, Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("v%d to v%d", cur, cur+1)) {
		t.Fatalf("broken migration: %v", err)
	}
	if s, err := Open(path, Options{ReadOnly: true}); err != nil {
		t.Fatalf("store unusable after failed migration: %v", err)
	} else {
		_ = s.Close()
	}

	m, err := next.open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.GetMeta("upgraded"); string(v) != "yes" {
		t.Errorf("migration not applied")
	}
	if got := m.Migration(); got == nil || got.From != cur || got.To != cur+1 || got.Backup != BackupPath(path) {
		t.Errorf("Migration() = %+v", got)
	}
	var schema string
	_ = m.view(func(tx *bbolt.Tx) error {
		schema = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		if tx.Bucket([]byte(bucketRuns)) != nil {
			t.Errorf("runs bucket survived the migration")
		}
		return nil
	})
	if schema != strconv.Itoa(cur+1) {
		t.Errorf("schema = %q after migration", schema)
	}
	out := make([]Record, 1)
	found := make([]bool, 1)
	if err := m.Lookup("2026-03", []string{"alice"}, out, found); err != nil || !found[0] {
		t.Errorf("records lost in migration: %v %v", found[0], err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The backup is the store as the current code wrote it.
	fileMode0600(t, BackupPath(path))
	bak := mustOpen(t, BackupPath(path), Options{ReadOnly: true})
	if err := bak.Lookup("2026-03", []string{"alice"}, out, found); err != nil || !found[0] {
		t.Errorf("backup lacks the records: %v %v", found[0], err)
	}
	// The current code now refuses the migrated store.
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNewerSchema) {
		t.Errorf("open of the newer store: %v, want ErrNewerSchema", err)
	}
}

func TestEmptyFileIsANewStore(t *testing.T) {
	path := tempPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of an empty file: %v, want os.ErrNotExist", err)
	}
	s := mustOpen(t, path, Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "a", 1)}}); err != nil {
		t.Fatal(err)
	}
}

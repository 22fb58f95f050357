package store

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// openV1 opens (creating it if needed) a store with the first schema, as
// the release before lower-case userids did.
func openV1(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	s, err := opener{}.open(path, opts)
	if err != nil {
		t.Fatalf("open v1 store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// v1Store writes a schema 1 store whose keys are userids as WeCom listed
// them, some of them colliding once lower-cased.
func v1Store(t *testing.T, path string) {
	t.Helper()
	s := openV1(t, path, Options{})
	rec := func(m, uid string, st State, id string, sec int) KeyedRecord {
		r := Record{Hash: uint64(len(uid)*1000 + sec), DataID: id, State: st, Attempts: 1}
		if st == StateSynced {
			r.SyncedAt = at(sec)
		}
		if st == StateFailed {
			r.LastError = "4000: bad value"
		}
		return KeyedRecord{Month: m, UserID: uid, Record: r}
	}
	w := &Write{
		Records: []KeyedRecord{
			// ZhangSan is synced; zhangsan failed later without a data_id.
			rec("2026-03", "ZhangSan", StateSynced, hexID(1), 10),
			rec("2026-03", "zhangsan", StateFailed, "", 0),
			// Three spellings, all synced: the last synced stays.
			rec("2026-03", "LISI", StateSynced, hexID(2), 1),
			rec("2026-03", "LiSi", StateSynced, hexID(3), 5),
			rec("2026-03", "lisi", StateSynced, hexID(4), 20),
			// A tie: the lower-case spelling stays.
			rec("2026-03", "Tie", StateSynced, hexID(5), 7),
			rec("2026-03", "tie", StateSynced, hexID(6), 7),
			rec("2026-03", "WangWu", StatePending, "", 0),
			rec("2026-03", "alice", StateSynced, hexID(7), 3),
			rec("2026-02", "ZhaoLiu", StateSynced, hexID(8), 2),
			rec("2026-01", "bob", StateSynced, hexID(9), 2),
		},
		PutPending: []Pending{{TxID: "tx-1", Month: "2026-03", UserIDs: []string{"WangWu", "alice"},
			Hashes: []uint64{1, 2}, FirstSentAt: at(30), LastSentAt: at(31), Resends: 1}},
		Months: []MonthInfo{{Month: "2026-03", Watermark: "2026-03-20", Dirty: true, LastRunID: "run-1", LastRunStart: at(0)}},
	}
	if err := s.Apply(w); err != nil {
		t.Fatal(err)
	}
	if mi, _, _ := s.Month("2026-03"); mi.Synced != 7 || mi.Pending != 1 || mi.Failed != 1 {
		t.Fatalf("v1 counts = %+v", mi)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func keysOf(t *testing.T, s *Store, m string) map[string]Record {
	t.Helper()
	out := map[string]Record{}
	if err := s.ForEach(m, func(uid string, r Record) error { out[uid] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func schemaOf(t *testing.T, path string) string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		return nil
	})
	return v
}

func TestMigrateLowerUserIDs(t *testing.T) {
	path := tempPath(t)
	v1Store(t, path)

	s := mustOpen(t, path, Options{})
	if got := schemaOf(t, BackupPath(path)); got != strconv.Itoa(schemaV1) {
		t.Errorf("backup schema = %q, want %d", got, schemaV1)
	}

	// The store is at the new schema, keyed by lower-case userids.
	var schema string
	_ = s.view(func(tx *bbolt.Tx) error {
		schema = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		return nil
	})
	if schema != strconv.Itoa(schemaLowerUserIDs) {
		t.Errorf("schema = %q, want %d", schema, schemaLowerUserIDs)
	}
	march := keysOf(t, s, "2026-03")
	want := map[string]string{ // key -> data_id kept
		"zhangsan": hexID(1), // synced with a data_id beats failed
		"lisi":     hexID(4), // synced last
		"tie":      hexID(6), // the lower-case spelling on a tie
		"wangwu":   "",
		"alice":    hexID(7),
	}
	if len(march) != len(want) {
		t.Errorf("2026-03 keys: %v, want %v", sortedKeys(march), want)
	}
	for k, id := range want {
		if r, ok := march[k]; !ok || r.DataID != id {
			t.Errorf("2026-03/%s = %+v (found %v), want data_id %q", k, r, ok, id)
		}
	}
	if r := march["zhangsan"]; r.State != StateSynced || !r.SyncedAt.Equal(at(10)) || r.Hash != uint64(8*1000+10) {
		t.Errorf("zhangsan's record changed in the move: %+v", r)
	}
	if r := march["wangwu"]; r.State != StatePending {
		t.Errorf("wangwu = %+v, want pending", r)
	}
	if got := sortedKeys(keysOf(t, s, "2026-02")); !reflect.DeepEqual(got, []string{"zhaoliu"}) {
		t.Errorf("2026-02 keys = %v", got)
	}
	if got := sortedKeys(keysOf(t, s, "2026-01")); !reflect.DeepEqual(got, []string{"bob"}) {
		t.Errorf("2026-01 keys = %v", got)
	}
	out := make([]Record, 2)
	found := make([]bool, 2)
	if err := s.Lookup("2026-03", []string{"zhangsan", "ZhangSan"}, out, found); err != nil || !found[0] || found[1] {
		t.Errorf("lookup after migration: found %v, %v", found, err)
	}

	// Dropped spellings are reported.
	mig := s.Migration()
	if mig == nil || mig.From != schemaV1 || mig.To != schemaLowerUserIDs || mig.Backup != BackupPath(path) {
		t.Fatalf("Migration() = %+v", mig)
	}
	dropped := map[string]string{}
	for _, d := range mig.Dropped {
		if d.Month != "2026-03" {
			t.Errorf("dropped %+v from another month", d)
		}
		dropped[d.UserID] = d.Kept
	}
	wantDropped := map[string]string{"zhangsan": "ZhangSan", "LISI": "lisi", "LiSi": "lisi", "Tie": "tie"}
	if !reflect.DeepEqual(dropped, wantDropped) {
		t.Errorf("dropped = %v, want %v", dropped, wantDropped)
	}

	// Pending entries name lower-case userids; the rest is as it was.
	ps, err := s.Pendings()
	if err != nil {
		t.Fatal(err)
	}
	wantP := []Pending{{TxID: "tx-1", Month: "2026-03", UserIDs: []string{"wangwu", "alice"},
		Hashes: []uint64{1, 2}, FirstSentAt: at(30), LastSentAt: at(31), Resends: 1}}
	if len(ps) != 1 || !ps[0].FirstSentAt.Equal(at(30)) || !ps[0].LastSentAt.Equal(at(31)) {
		t.Fatalf("pendings = %+v", ps)
	}
	ps[0].FirstSentAt, ps[0].LastSentAt = wantP[0].FirstSentAt, wantP[0].LastSentAt
	if !reflect.DeepEqual(ps, wantP) {
		t.Errorf("pendings = %+v, want %+v", ps, wantP)
	}

	// Counts match the records; the months' other fields are kept.
	for m, c := range map[string][3]int{"2026-03": {4, 1, 0}, "2026-02": {1, 0, 0}, "2026-01": {1, 0, 0}} {
		mi, ok, err := s.Month(m)
		if err != nil || !ok {
			t.Fatalf("month %s: %v %v", m, ok, err)
		}
		if got := [3]int{mi.Synced, mi.Pending, mi.Failed}; got != c {
			t.Errorf("month %s counts = %v, want %v", m, got, c)
		}
		if sy, pe, fa, err := s.Count(m); err != nil || [3]int{sy, pe, fa} != c {
			t.Errorf("month %s records = %v %v %v (%v), want %v", m, sy, pe, fa, err, c)
		}
	}
	if mi, _, _ := s.Month("2026-03"); mi.Watermark != "2026-03-20" || !mi.Dirty || mi.LastRunID != "run-1" || !mi.LastRunStart.Equal(at(0)) {
		t.Errorf("2026-03 summary lost fields: %+v", mi)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The backup holds the old store, readable by the v1 code.
	bak, err := os.ReadFile(BackupPath(path))
	if err != nil {
		t.Fatal(err)
	}
	b := openV1(t, BackupPath(path), Options{ReadOnly: true})
	if got := sortedKeys(keysOf(t, b, "2026-03")); !reflect.DeepEqual(got, []string{"LISI", "LiSi", "Tie", "WangWu", "ZhangSan", "alice", "lisi", "tie", "zhangsan"}) {
		t.Errorf("backup keys = %v", got)
	}
	if ps, err := b.Pendings(); err != nil || len(ps) != 1 || !reflect.DeepEqual(ps[0].UserIDs, []string{"WangWu", "alice"}) {
		t.Errorf("backup pendings = %+v, %v", ps, err)
	}
	if mi, _, _ := b.Month("2026-03"); mi.Synced != 7 || mi.Pending != 1 || mi.Failed != 1 {
		t.Errorf("backup counts = %+v", mi)
	}
	_ = b.Close()

	// A second open migrates nothing and leaves the backup alone.
	s2 := mustOpen(t, path, Options{})
	if s2.Migration() != nil {
		t.Errorf("second open migrated again: %+v", s2.Migration())
	}
	if got := sortedKeys(keysOf(t, s2, "2026-03")); !reflect.DeepEqual(got, []string{"alice", "lisi", "tie", "wangwu", "zhangsan"}) {
		t.Errorf("keys after second open = %v", got)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if again, err := os.ReadFile(BackupPath(path)); err != nil || !bytes.Equal(again, bak) {
		t.Errorf("second open rewrote the backup (%v)", err)
	}
}

// A v1 store without a capital letter anywhere is only relabelled.
func TestMigrateLowerCaseStoreUnchanged(t *testing.T) {
	path := tempPath(t)
	s := openV1(t, path, Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "alice", 1), synced("2026-03", "bob", 2)}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	m := mustOpen(t, path, Options{})
	if mig := m.Migration(); mig == nil || len(mig.Dropped) != 0 {
		t.Errorf("Migration() = %+v", mig)
	}
	if got := sortedKeys(keysOf(t, m, "2026-03")); !reflect.DeepEqual(got, []string{"alice", "bob"}) {
		t.Errorf("keys = %v", got)
	}
	if mi, _, _ := m.Month("2026-03"); mi.Synced != 2 {
		t.Errorf("counts = %+v", mi)
	}
}

// A record that cannot be decoded stops the migration: the store is left
// at its old schema, whole.
func TestMigrateCorruptCollisionRollsBack(t *testing.T) {
	path := tempPath(t)
	s := openV1(t, path, Options{})
	if err := s.Apply(&Write{Records: []KeyedRecord{synced("2026-03", "Alice", 1), synced("2026-03", "alice", 2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(recBucket("2026-03")).Put([]byte("Alice"), []byte{1, 1, 0})
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("migration of a store with a damaged record: %v, want ErrCorrupt", err)
	}
	if got := schemaOf(t, path); got != strconv.Itoa(schemaV1) {
		t.Errorf("schema after failed migration = %q", got)
	}
	b := openV1(t, path, Options{ReadOnly: true})
	if got := sortedKeys(keysOf2(t, b, "2026-03")); !reflect.DeepEqual(got, []string{"Alice", "alice"}) {
		t.Errorf("keys after failed migration = %v", got)
	}
}

// keysOf2 lists keys without decoding values, which may be damaged.
func keysOf2(t *testing.T, s *Store, m string) map[string]Record {
	t.Helper()
	out := map[string]Record{}
	_ = s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(recBucket(m)).ForEach(func(k, _ []byte) error { out[string(k)] = Record{}; return nil })
	})
	return out
}

func sortedKeys(m map[string]Record) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

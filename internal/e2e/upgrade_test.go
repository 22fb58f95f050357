package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// TestUpgradeFromMixedCaseKeys starts from the store and form the previous
// release (d215b9b) left behind: store records keyed by the userid as WeCom
// lists it ("ZhangSan"), and form keys in that spelling ("ZhangSan|2026-02").
// Nothing of the old release runs: the form is filled by hand with what the
// current mapping writes, except the key, and the store is written by the
// store package and stamped with schema 1, whose layout differs from the
// current one only in the case of its keys.
//
// The first sync must migrate the store, adopt every record (no create),
// rewrite only the keys that had capitals, and count each user once; the
// second must write nothing.
func TestUpgradeFromMixedCaseKeys(t *testing.T) {
	upgradeScenario(t, false)
}

// TestUpgradeWithPendingBatch: the previous release crashed after its
// create batch landed and before it learnt the _ids, so its store holds
// every record pending, without a data_id, and a pending entry that names
// the userids in their old spelling. The upgrade still adopts every record
// by key, old spelling included, and creates none.
func TestUpgradeWithPendingBatch(t *testing.T) {
	upgradeScenario(t, true)
}

func upgradeScenario(t *testing.T, pending bool) {
	e := newEnv(t, envOptions{users: 80})
	m := month.MustParse("2026-02")
	args := []string{"--today", "2026-03-15", "sync", "--month", m.String()}
	mp := e.mapper()
	users := e.company.Users()

	var mixed int
	for _, u := range users {
		if strings.ToLower(u.UserID) != u.UserID {
			mixed++
		}
	}
	if mixed == 0 || mixed == len(users) {
		t.Fatalf("%d of %d userids have capitals; the test needs some of each", mixed, len(users))
	}

	// The form as the previous release left it.
	oldIDs := map[string]string{} // data_id -> old key
	w := &store.Write{}
	synced := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	// Sent over an hour ago: a resend under the same transaction_id would
	// no longer be recognised as one.
	sent := time.Now().Add(-2 * time.Hour).UTC()
	batch := store.Pending{TxID: "5d0c6b1e2f3a4b5c6d7e8f9012345678", Month: m.String(), FirstSentAt: sent, LastSentAt: sent}
	for _, u := range users {
		res, err := mp.Map(mapping.Input{UserID: u.UserID, Month: m, Report: e.company.Report(u.UserID, m)})
		if err != nil {
			t.Fatalf("map %s: %v", u.UserID, err)
		}
		var fields map[string]struct{ Value any }
		if err := json.Unmarshal(res.Data, &fields); err != nil {
			t.Fatal(err)
		}
		data := make(map[string]any, len(fields))
		for name, f := range fields {
			data[name] = f.Value
		}
		oldKey := u.UserID + "|" + m.String()
		data[mp.KeyField()] = oldKey
		id := e.srv.InsertRecordBy("", data) // "": the enterprise creator, whom API writes are credited to
		oldIDs[id] = oldKey

		// The old release stored the hash of what it wrote, which is what
		// the form's record reads back as.
		rb, err := mp.ReadBack(upgradeRecordData(t, e, id))
		if err != nil || !rb.Exact {
			t.Fatalf("read back %s: %v (inexact: %v)", oldKey, err, rb.Inexact)
		}
		if same := rb.Hash == res.Hash; same != (oldKey == mp.Key(u.UserID, m)) {
			t.Fatalf("%s: form hash equals the current payload's: %v; only a lower-case userid's should", oldKey, same)
		}
		rec := store.Record{Hash: rb.Hash, DataID: id, State: store.StateSynced, Attempts: 1, SyncedAt: synced}
		if pending {
			rec = store.Record{Hash: rb.Hash, State: store.StatePending, Attempts: 1}
			batch.UserIDs = append(batch.UserIDs, u.UserID)
			batch.Hashes = append(batch.Hashes, rb.Hash)
		}
		w.Records = append(w.Records, store.KeyedRecord{Month: m.String(), UserID: u.UserID, Record: rec})
	}
	if pending {
		w.PutPending = []store.Pending{batch}
		w.Months = []store.MonthInfo{{Month: m.String(), Dirty: true, LastRunID: "20260301T020000.000000Z-abcdef", LastRunStart: synced}}
	} else {
		w.Months = []store.MonthInfo{{Month: m.String(), Watermark: "2026-02-28",
			LastRunID: "20260301T020000.000000Z-abcdef", LastRunStart: synced, LastSuccess: synced}}
	}
	upgradeWriteV1Store(t, e, w)
	storePath := filepath.Join(e.dir, "state.db")

	// First sync with this release.
	r := e.mustRun(0, args...)
	if n := e.srv.Calls("data/batch_create") + e.srv.Calls("data/create"); n != 0 {
		t.Errorf("%d create calls, want 0: every record is adopted\n%s", n, r)
	}
	if n := e.srv.Calls("data/update"); n != mixed {
		t.Errorf("%d update calls, want %d (one per userid with capitals)\n%s", n, mixed, r)
	}
	if n := e.srv.Calls("data/delete") + e.srv.Calls("data/batch_delete"); n != 0 {
		t.Errorf("%d delete calls, want 0", n)
	}
	if n := e.srv.Calls("data/list"); !pending && n != 0 {
		t.Errorf("%d data/list calls, want 0: the migrated store knows every data_id", n)
	}

	// Exactly one record per user, every key in lower case, each record
	// the one the old release wrote.
	perKey := map[string]int{}
	for _, rec := range e.srv.Records() {
		k, _ := rec.Data[mp.KeyField()].(string)
		if k != strings.ToLower(k) {
			t.Errorf("record %s still has key %q", rec.ID, k)
		}
		if _, ok := oldIDs[rec.ID]; !ok {
			t.Errorf("record %s (%q) was not in the form before the upgrade", rec.ID, k)
		}
		perKey[strings.ToLower(k)]++
	}
	for _, u := range users {
		if k := mp.Key(u.UserID, m); perKey[k] != 1 {
			t.Errorf("%s: %d records, want 1", k, perKey[k])
		}
	}
	if len(perKey) != len(users) {
		t.Errorf("form holds %d keys, want %d", len(perKey), len(users))
	}
	e.checkForm(m)

	// The store was migrated, with the old one kept beside it, and each
	// user counts once.
	if got := upgradeSchemaOf(t, storePath+".bak"); got != "1" {
		t.Errorf("backup has schema %q, want 1", got)
	}
	if got := upgradeSchemaOf(t, storePath); got == "1" || got == "" {
		t.Errorf("store has schema %q after the sync, want a newer one", got)
	}
	checkStatus := func(when string) {
		t.Helper()
		st := e.statusJSON("2026-03-15")
		var row map[string]any
		for _, x := range st["months"].([]any) {
			if x := x.(map[string]any); x["month"] == m.String() {
				row = x
			}
		}
		if row == nil || row["records"] != float64(len(users)) || row["synced"] != float64(len(users)) ||
			row["pending"] != float64(0) || row["failed"] != float64(0) {
			t.Errorf("status of %s %s: %v, want %d records, all synced", m, when, row, len(users))
		}
	}
	checkStatus("after the upgrade")

	// A second sync writes nothing.
	c0, u0 := e.writes()
	r = e.mustRun(0, args...)
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Errorf("second sync wrote: %d creates, %d updates\n%s", c-c0, u-u0, r)
	}
	e.checkForm(m)
	checkStatus("after a second sync")
}

// upgradeRecordData is the form record id's fields, as the fake holds them.
func upgradeRecordData(t *testing.T, e *env, id string) map[string]any {
	t.Helper()
	for _, r := range e.srv.Records() {
		if r.ID == id {
			return r.Data
		}
	}
	t.Fatalf("record %s not in the form", id)
	return nil
}

// upgradeWriteV1Store writes the env's store in schema 1: bound to the
// env's corp and form, holding w with its userids spelt as given.
func upgradeWriteV1Store(t *testing.T, e *env, w *store.Write) {
	t.Helper()
	path := filepath.Join(e.dir, "state.db")
	s, err := store.Open(path, store.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	cr := e.srv.Credentials()
	if err := s.Bind(store.Identity{CorpID: cr.CorpID, AppID: cr.AppID, EntryID: cr.EntryID}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(w); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
}

// upgradeSchemaOf reads a store file's schema version ("" when it has
// none or cannot be opened, which is reported).
func upgradeSchemaOf(t *testing.T, path string) string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("open %s: %v", path, err)
		return ""
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			v = string(meta.Get([]byte("schema")))
		}
		return nil
	})
	return v
}

package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/bbolt"
)

// Schema versions. Each migration below upgrades one version to the next.
const (
	// schemaV1 keyed rec/<month> and pending user_ids by the userid as
	// WeCom listed it ("ZhangSan").
	schemaV1 = 1
	// schemaLowerUserIDs keys them by the userid in lower case
	// (strings.ToLower), because WeCom userids are case-insensitive.
	schemaLowerUserIDs = 2
)

// migrations lists the schema upgrades in order: migrations()[i] upgrades
// schema i+1 to i+2. Schema 1 is the first.
func migrations() []migration {
	return []migration{
		lowerUserIDs, // schemaV1 -> schemaLowerUserIDs
	}
}

// Migration describes the upgrade Open made to an older store.
type Migration struct {
	From, To int
	Backup   string // the copy of the store as it was before the upgrade
	// Dropped lists the records the upgrade to lower-case userids gave up:
	// two spellings of one userid in one month ("ZhangSan", "zhangsan")
	// became one key, and only one record could stay. Dropped ones remain
	// in Backup.
	Dropped []DroppedRecord
}

// DroppedRecord is a checkpoint a migration gave up in favour of Kept.
type DroppedRecord struct {
	Month, UserID string // the userid as the old store spelt it
	Record        Record
	Kept          string // the userid spelling whose record stayed
}

// Migration returns what Open upgraded, or nil when the store was already
// current. The caller logs it; the store has no logger.
func (s *Store) Migration() *Migration { return s.migration }

// lowerUserIDs upgrades schema 1 to 2: every rec/<month> key and every
// pending entry's user_ids become lower case, and the months counts are
// recounted, since colliding spellings merge into one record.
//
// When two spellings collide the record kept is the one synced with a
// data_id, then the one synced last, then the one already in lower case,
// then the first in byte order; the others are reported in m.Dropped.
func lowerUserIDs(tx *bbolt.Tx, m *Migration) error {
	var months []string
	err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if bytes.HasPrefix(name, []byte(recPrefix)) {
			months = append(months, string(name[len(recPrefix):]))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, mo := range months {
		if err := lowerMonth(tx, mo, m); err != nil {
			return err
		}
	}
	if err := lowerPending(tx); err != nil {
		return err
	}
	return recountMonths(tx)
}

type kv struct{ k, v []byte }

// lowerMonth rewrites one rec/<month> bucket when any of its keys has an
// upper-case letter. The bucket is rebuilt in key order, which also keeps
// its pages full.
func lowerMonth(tx *bbolt.Tx, mo string, m *Migration) error {
	name := recBucket(mo)
	b := tx.Bucket(name)
	var all []kv
	dirty := false
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("%w: rec/%s holds a nested bucket %q", ErrCorrupt, mo, k)
		}
		// Copies: the bucket is deleted below, and its pages with it.
		all = append(all, kv{bytes.Clone(k), bytes.Clone(v)})
		if !dirty && strings.ToLower(string(k)) != string(k) {
			dirty = true
		}
		return nil
	})
	if err != nil || !dirty {
		return err
	}

	groups := make(map[string][]kv, len(all))
	for _, e := range all {
		low := strings.ToLower(string(e.k))
		groups[low] = append(groups[low], e)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	if err := tx.DeleteBucket(name); err != nil {
		return err
	}
	nb, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	nb.FillPercent = recFillPercent
	for _, low := range keys {
		g := groups[low]
		keep := 0
		if len(g) > 1 {
			if keep, err = pickRecord(mo, low, g); err != nil {
				return err
			}
			for i, e := range g {
				if i == keep {
					continue
				}
				var r Record
				if err := decodeRecord(e.v, &r); err != nil {
					return fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, mo, e.k, err)
				}
				m.Dropped = append(m.Dropped, DroppedRecord{Month: mo, UserID: string(e.k), Record: r, Kept: string(g[keep].k)})
			}
		}
		if err := nb.Put([]byte(low), g[keep].v); err != nil {
			return fmt.Errorf("record %s/%s: %w", mo, low, err)
		}
	}
	return nil
}

// pickRecord chooses which of several spellings' records stays. g is in
// byte order of the old keys.
func pickRecord(mo, low string, g []kv) (int, error) {
	best := -1
	var bestRec Record
	for i, e := range g {
		var r Record
		if err := decodeRecord(e.v, &r); err != nil {
			return 0, fmt.Errorf("%w: record %s/%s: %v", ErrCorrupt, mo, e.k, err)
		}
		if best < 0 || betterRecord(r, string(e.k), bestRec, string(g[best].k), low) {
			best, bestRec = i, r
		}
	}
	return best, nil
}

// betterRecord reports whether a (under key ak) should be kept over b
// (under key bk); ties go to b, the earlier key.
func betterRecord(a Record, ak string, b Record, bk string, low string) bool {
	aDone := a.State == StateSynced && a.DataID != ""
	bDone := b.State == StateSynced && b.DataID != ""
	if aDone != bDone {
		return aDone
	}
	if !a.SyncedAt.Equal(b.SyncedAt) {
		return a.SyncedAt.After(b.SyncedAt)
	}
	if (ak == low) != (bk == low) {
		return ak == low
	}
	return false
}

// lowerPending lower-cases the user_ids of every pending batch. Other
// fields are kept as they are, whatever they hold.
func lowerPending(tx *bbolt.Tx) error {
	return rewriteEntries(tx, bucketPending, "pending", func(k []byte, fields map[string]json.RawMessage) (bool, error) {
		var ids []string
		if raw, ok := fields["user_ids"]; ok {
			if err := json.Unmarshal(raw, &ids); err != nil {
				return false, fmt.Errorf("%w: pending %s: user_ids: %v", ErrCorrupt, k, err)
			}
		}
		changed := false
		for i, id := range ids {
			if low := strings.ToLower(id); low != id {
				ids[i], changed = low, true
			}
		}
		if !changed {
			return false, nil
		}
		raw, err := json.Marshal(ids)
		if err != nil {
			return false, err
		}
		fields["user_ids"] = raw
		return true, nil
	})
}

// recountMonths sets every months entry's counts from its rec/ bucket,
// keeping the entry's other fields.
func recountMonths(tx *bbolt.Tx) error {
	return rewriteEntries(tx, bucketMonths, "month", func(k []byte, fields map[string]json.RawMessage) (bool, error) {
		c, err := countBucket(tx, string(k))
		if err != nil {
			return false, err
		}
		for name, n := range map[string]int{"synced": c[StateSynced], "pending": c[StatePending], "failed": c[StateFailed]} {
			fields[name] = json.RawMessage(fmt.Sprint(n))
		}
		return true, nil
	})
}

// rewriteEntries rewrites the JSON objects stored in the bucket named
// bucket, if it exists: edit changes the fields of the entry under k and
// reports whether it changed any; the changed entries are put back once
// the walk is over. Fields edit leaves alone are kept as they are. item
// names one entry in errors ("month 2026-03").
func rewriteEntries(tx *bbolt.Tx, bucket, item string, edit func(k []byte, fields map[string]json.RawMessage) (bool, error)) error {
	b := tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	var out []kv
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("%w: %s holds a nested bucket %q", ErrCorrupt, bucket, k)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(v, &fields); err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrCorrupt, item, k, err)
		}
		changed, err := edit(k, fields)
		if err != nil || !changed {
			return err
		}
		nv, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		out = append(out, kv{bytes.Clone(k), nv})
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range out {
		if err := b.Put(e.k, e.v); err != nil {
			return fmt.Errorf("put %s %s: %w", item, e.k, err)
		}
	}
	return nil
}

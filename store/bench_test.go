package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// The store's share of a sync's per-record work: one Lookup per batch of
// up to 100 listed userids, and one Apply (one bbolt transaction, one
// fsync) per batch written. The figures below are per record, the unit a
// sync's cost is counted in.

// batchSize is the engine's batch: WeCom's month data takes at most 100
// userids a call, and the engine looks up and writes batches of that size.
const batchSize = 100

// benchMonth is the month bucket the benchmarks fill.
const benchMonth = "2026-03"

// loadUserIDs returns n sorted, distinct userids of 10 to 20 bytes, the
// shape WeCom userids usually have.
func loadUserIDs(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		l := 10 + rng.IntN(11)
		b := make([]byte, l)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		copy(b[l-4:], fmt.Sprintf("%04d", len(out)%10000))
		if s := string(b); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// syncedAt is the SyncedAt of the j-th loaded record.
func syncedAt(j int) time.Time {
	return time.Date(2026, 3, 5, 2, 0, 0, 0, time.UTC).Add(time.Duration(j) * time.Millisecond)
}

// loadStore writes one month of synced records in batches of 100, as an
// initial load does, and returns the file size.
func loadStore(tb testing.TB, path string, uids []string) int64 {
	tb.Helper()
	s, err := Open(path, Options{Command: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	loadMonth(tb, s, benchMonth, uids)
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// loadMonth writes uids as synced records of month m, 100 a transaction.
func loadMonth(tb testing.TB, s *Store, m string, uids []string) {
	tb.Helper()
	w := &Write{Records: make([]KeyedRecord, 0, batchSize)}
	for i := 0; i < len(uids); i += batchSize {
		w.Records = w.Records[:0]
		for j := i; j < i+batchSize && j < len(uids); j++ {
			w.Records = append(w.Records, KeyedRecord{Month: m, UserID: uids[j], Record: Record{
				Hash: uint64(j) * 0x9e3779b97f4a7c15, DataID: fmt.Sprintf("%024x", 0x65f3a0000000+j),
				State: StateSynced, Attempts: 1, SyncedAt: syncedAt(j),
			}})
		}
		if err := s.Apply(w); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestStoreSizePerRecord keeps the size target in the ordinary test run.
func TestStoreSizePerRecord(t *testing.T) {
	const n = 10000
	size := loadStore(t, filepath.Join(t.TempDir(), "size.db"), loadUserIDs(n, 1))
	perRecord := float64(size) / n
	t.Logf("%d records: %d bytes, %.1f bytes/record", n, size, perRecord)
	if perRecord >= 200 {
		t.Errorf("%.1f bytes/record, target under 200", perRecord)
	}
}

// BenchmarkStoreSize reports the file size per record after an initial
// load of 100,000 records (target: under 200 bytes).
func BenchmarkStoreSize(b *testing.B) {
	const n = 100000
	uids := loadUserIDs(n, 1)
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		size = loadStore(b, filepath.Join(b.TempDir(), fmt.Sprintf("size%d.db", i)), uids)
	}
	b.ReportMetric(float64(size)/n, "bytes/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkLookup measures the store's share of an unchanged rerun: one
// Lookup per batch of 100 userids, in sorted windows of a 50,000-record
// month opened read-only.
func BenchmarkLookup(b *testing.B) {
	const n = 50000
	uids := loadUserIDs(n, 2)
	path := filepath.Join(b.TempDir(), "lookup.db")
	loadStore(b, path, uids)
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	out := make([]Record, batchSize)
	found := make([]bool, batchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := (i * batchSize) % (n - batchSize)
		if err := s.Lookup(benchMonth, uids[at:at+batchSize], out, found); err != nil {
			b.Fatal(err)
		}
	}
	reportPerRecord(b)
}

// reportPerRecord adds ns/record for benchmarks whose op is one batch.
func reportPerRecord(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/record")
}

// monthRecords is the size of the month the per-batch benchmarks work
// on: a 10,000-employee company.
const monthRecords = 10000

// openLoaded returns a writable store, as a sync opens it, holding two
// earlier months and then benchMonth, each of monthRecords synced records,
// and the userids in sorted order. The earlier months matter: they put
// benchMonth's pages past the first few hundred of the file, where a
// store with any history has them.
func openLoaded(b *testing.B) (*Store, []string) {
	b.Helper()
	uids := loadUserIDs(monthRecords, 3)
	s, err := Open(filepath.Join(b.TempDir(), "checkin-sync.db"), Options{Command: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	for _, m := range []string{"2026-01", "2026-02", benchMonth} {
		loadMonth(b, s, m, uids)
	}
	return s, uids
}

// inListingOrder returns ids in the order the engine handles them: WeCom
// lists users by department, not by userid, so a batch of 100 is spread
// over the whole month, and the engine sorts each batch by userid before
// it reads or writes the store (unless sortBatches is false).
func inListingOrder(ids []string, seed uint64, sortBatches bool) []string {
	out := append([]string(nil), ids...)
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if sortBatches {
		for at := 0; at < len(out); at += batchSize {
			sort.Strings(out[at:min(at+batchSize, len(out))])
		}
	}
	return out
}

// BenchmarkLookupBatch is the call the engine makes for each batch of 100
// mapped rows (cp.Lookup in sync/plan.go), against a month of 10,000
// records in a store with two earlier months. "listing" is the case to
// read: a batch in listing order, sorted. "unsorted" is the same batches
// left in listing order, "contiguous" the best case of 100 neighbouring
// keys, and "absent" a batch of new employees. Each batch gets fresh out
// and found slices, as the engine's do, so the decoded data_ids are new
// strings.
func BenchmarkLookupBatch(b *testing.B) {
	s, uids := openLoaded(b)
	var absent []string
	for _, u := range loadUserIDs(monthRecords, 5) {
		if i := sort.SearchStrings(uids, u); i == len(uids) || uids[i] != u {
			absent = append(absent, u)
		}
	}
	for _, c := range []struct {
		name  string
		ids   []string
		found bool
	}{
		{"listing", inListingOrder(uids, 4, true), true},
		{"unsorted", inListingOrder(uids, 4, false), true},
		{"contiguous", uids, true},
		{"absent", inListingOrder(absent, 4, true), false},
	} {
		b.Run(c.name, func(b *testing.B) {
			batches := len(c.ids) / batchSize
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				at := i % batches * batchSize
				out, found := make([]Record, batchSize), make([]bool, batchSize)
				if err := s.Lookup(benchMonth, c.ids[at:at+batchSize], out, found); err != nil {
					b.Fatal(err)
				}
				if found[0] != c.found || found[batchSize-1] != c.found {
					b.Fatalf("found %v, want %v", found[0], c.found)
				}
			}
			reportPerRecord(b)
		})
	}
}

// syncedBatch is the write the engine makes once a batch of 100 records
// is confirmed in the form: each record synced with its hash and data_id
// (syncedRecord in sync/plan.go).
func syncedBatch(ids []string, hashSeed uint64, at time.Time) []KeyedRecord {
	recs := make([]KeyedRecord, len(ids))
	for i, uid := range ids {
		recs[i] = KeyedRecord{Month: benchMonth, UserID: uid, Record: Record{
			Hash: (hashSeed + uint64(i)) * 0x9e3779b97f4a7c15, DataID: fmt.Sprintf("%024x", 0x66a1b0000000+hashSeed+uint64(i)),
			State: StateSynced, SyncedAt: at,
		}}
	}
	return recs
}

// BenchmarkApplyUpdate writes back 100 records of a 10,000-record month
// as synced with a new hash, in one transaction: what the engine saves
// after a batch of updates (sync/update.go). Each op takes the next batch
// in listing order.
func BenchmarkApplyUpdate(b *testing.B) {
	s, uids := openLoaded(b)
	uids = inListingOrder(uids, 6, true)
	writes := make([]*Write, len(uids)/batchSize)
	for k := range writes {
		writes[k] = &Write{Records: syncedBatch(uids[k*batchSize:(k+1)*batchSize], uint64(k*batchSize), syncedAt(k))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(writes[i%len(writes)]); err != nil {
			b.Fatal(err)
		}
	}
	reportPerRecord(b)
}

// newUserIDs returns n userids absent from the loaded month, in listing
// order, as the next run's new employees.
func newUserIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("new%07d.%04x", i, (uint32(i)*2654435761)>>16)
	}
	return inListingOrder(ids, 7, true)
}

// pendingBatch is the write the engine saves before it sends a create
// batch (startBatch in sync/batch.go): the Pending entry with the batch's
// userids and hashes, and each record pending with its hash.
func pendingBatch(k int, ids []string) *Write {
	at := syncedAt(k)
	hashes := make([]uint64, len(ids))
	recs := make([]KeyedRecord, len(ids))
	for i, uid := range ids {
		hashes[i] = uint64(k*batchSize+i+1) * 0x9e3779b97f4a7c15
		recs[i] = KeyedRecord{Month: benchMonth, UserID: uid, Record: Record{Hash: hashes[i], State: StatePending}}
	}
	p := Pending{TxID: fmt.Sprintf("1b4e28ba-2fa1-41d2-883f-%012x", k), Month: benchMonth,
		UserIDs: ids, Hashes: hashes, FirstSentAt: at, LastSentAt: at}
	return &Write{PutPending: []Pending{p}, Records: recs}
}

// BenchmarkApplyPending saves create batches of 100 new records into a
// 10,000-record month, one transaction each, before they are sent.
func BenchmarkApplyPending(b *testing.B) {
	s, _ := openLoaded(b)
	ids := newUserIDs(b.N * batchSize)
	writes := make([]*Write, b.N)
	for k := range writes {
		writes[k] = pendingBatch(k, ids[k*batchSize:(k+1)*batchSize])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(writes[i]); err != nil {
			b.Fatal(err)
		}
	}
	reportPerRecord(b)
}

// BenchmarkApplySettle is the write that ends a create batch once the
// lookup finds its records (settle in sync/batch.go): the Pending entry
// deleted and its 100 records synced with their data_ids, in one
// transaction. The batches are saved pending beforehand, outside the
// timing, in one transaction.
func BenchmarkApplySettle(b *testing.B) {
	s, _ := openLoaded(b)
	ids := newUserIDs(b.N * batchSize)
	setup := &Write{}
	writes := make([]*Write, b.N)
	for k := range writes {
		batch := ids[k*batchSize : (k+1)*batchSize]
		p := pendingBatch(k, batch)
		setup.PutPending = append(setup.PutPending, p.PutPending...)
		setup.Records = append(setup.Records, p.Records...)
		writes[k] = &Write{DeletePending: []string{p.PutPending[0].TxID}, Records: syncedBatch(batch, uint64(k*batchSize), syncedAt(k))}
	}
	if err := s.Apply(setup); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(writes[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if ps, err := s.Pendings(); err != nil || len(ps) != 0 {
		b.Fatalf("%d pending batches left: %v", len(ps), err)
	}
	reportPerRecord(b)
}

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

// loadStore writes one month of synced records in batches of 100, as an
// initial load does, and returns the file size.
func loadStore(tb testing.TB, path string, uids []string) int64 {
	tb.Helper()
	s, err := Open(path, Options{Command: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	w := &Write{Records: make([]KeyedRecord, 0, 100)}
	at := time.Date(2026, 3, 5, 2, 0, 0, 0, time.UTC)
	for i := 0; i < len(uids); i += 100 {
		w.Records = w.Records[:0]
		for j := i; j < i+100 && j < len(uids); j++ {
			w.Records = append(w.Records, KeyedRecord{Month: "2026-03", UserID: uids[j], Record: Record{
				Hash: uint64(j) * 0x9e3779b97f4a7c15, DataID: fmt.Sprintf("%024x", 0x65f3a0000000+j),
				State: StateSynced, Attempts: 1, SyncedAt: at.Add(time.Duration(j) * time.Millisecond),
			}})
		}
		if err := s.Apply(w); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
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
// Lookup per batch of 100 userids.
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
	out := make([]Record, 100)
	found := make([]bool, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := (i * 100) % (n - 100)
		if err := s.Lookup("2026-03", uids[at:at+100], out, found); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
}

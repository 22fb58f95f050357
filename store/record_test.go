package store

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleRecords() []Record {
	return []Record{
		{Hash: 1, DataID: "5f3a1b2c3d4e5f6a7b8c9d0e", State: StateSynced, Attempts: 1, SyncedAt: time.Unix(1772676004, 0).UTC()},
		{Hash: math.MaxUint64, State: StatePending},
		{Hash: 42, DataID: "5F3A1B2C3D4E5F6A7B8C9D0E", State: StateFailed, Attempts: math.MaxUint32, LastError: "4000: bad value"},
		{DataID: "short", State: StateSynced, LastError: "多行\n错误"},
		{Hash: 7, SubformHash: 0x0123456789abcdef, DataID: "5f3a1b2c3d4e5f6a7b8c9d0e", State: StateSynced, Attempts: 2, SyncedAt: time.Unix(1772676004, 0).UTC()},
		{Hash: 8, SubformHash: math.MaxUint64, DataID: "not-hex", State: StatePending},
		{SubformHash: 1, State: StateFailed, LastError: "x"},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		b, err := appendRecord(nil, &r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		var got Record
		if err := decodeRecord(b, &got); err != nil {
			t.Fatalf("decode %+v: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip: %+v, want %+v", got, r)
		}
		if st, err := recordState(b); err != nil || st != r.State {
			t.Errorf("recordState = %v, %v", st, err)
		}
	}
	// A hex id is packed: the value stays small.
	b, _ := appendRecord(nil, &sampleRecords()[0])
	if len(b) > 32 {
		t.Errorf("synced record with hex id takes %d bytes", len(b))
	}
}

func TestRecordEncodeRejects(t *testing.T) {
	for name, r := range map[string]Record{
		"no state":     {},
		"bad state":    {State: 9},
		"before 1970":  {State: StateSynced, SyncedAt: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
		"huge data_id": {State: StateSynced, DataID: strings.Repeat("x", maxDataID+1)},
	} {
		if _, err := appendRecord(nil, &r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecodeCorruptValues(t *testing.T) {
	good, _ := appendRecord(nil, &sampleRecords()[2])
	cases := map[string][]byte{
		"empty":          nil,
		"short header":   good[:5],
		"future version": append([]byte{2}, good[1:]...),
		"bad state":      append([]byte{1, 0x07}, good[2:]...),
		"unknown flag":   append([]byte{1, 0x41}, good[2:]...),
		"unknown flag 8": append([]byte{1, 0x81}, good[2:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"huge length":    append(append([]byte{}, good[:recHeader]...), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"overlong":       append(append([]byte{}, good[:recHeader]...), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80),
	}
	for name, v := range cases {
		var r Record
		if err := decodeRecord(v, &r); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v, want errRecord", name, err)
		}
	}
}

func TestLastErrorCutAtRune(t *testing.T) {
	s := strings.Repeat("é", 150) // 300 bytes
	for _, tc := range []struct {
		in   string
		want int
	}{
		{s, MaxLastError},
		{"a" + s, MaxLastError - 1}, // the 200th byte would split a rune
		{"short", 5},
	} {
		b, err := appendRecord(nil, &Record{State: StateFailed, LastError: tc.in})
		if err != nil {
			t.Fatal(err)
		}
		var got Record
		if err := decodeRecord(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.LastError) != tc.want || !strings.HasPrefix(tc.in, got.LastError) || !utf8.ValidString(got.LastError) {
			t.Errorf("last error cut to %d bytes (valid UTF-8: %v), want %d", len(got.LastError), utf8.ValidString(got.LastError), tc.want)
		}
	}
}

// The subform hash takes 8 bytes after the hash, only when it is set: a
// record without one keeps the size it had before the flag existed.
func TestRecordSubformHash(t *testing.T) {
	base := Record{Hash: 99, DataID: "5f3a1b2c3d4e5f6a7b8c9d0e", State: StateSynced, Attempts: 1, SyncedAt: time.Unix(1772676004, 0).UTC()}
	without, err := appendRecord(nil, &base)
	if err != nil {
		t.Fatal(err)
	}
	if without[1]&flagSubform != 0 {
		t.Errorf("flag set without a subform hash: %#x", without[1])
	}
	with := base
	with.SubformHash = 0xfeedface
	b, err := appendRecord(nil, &with)
	if err != nil {
		t.Fatal(err)
	}
	if b[1]&flagSubform == 0 || b[1]&flagHexID == 0 || State(b[1]&stateMask) != StateSynced {
		t.Errorf("state byte %#x, want synced with hex id and subform flags", b[1])
	}
	if len(b) != len(without)+8 {
		t.Errorf("with subform hash: %d bytes, want %d", len(b), len(without)+8)
	}
	if !bytes.Equal(b[:2], []byte{recordV1, without[1] | flagSubform}) || !bytes.Equal(b[2:recHeader], without[2:recHeader]) ||
		!bytes.Equal(b[recHeader+8:], without[recHeader:]) {
		t.Errorf("layout: %x, want %x with the subform hash after the hash", b, without)
	}
	for _, tc := range []struct {
		v    []byte
		want Record
	}{{without, base}, {b, with}} {
		// Decode into a record that holds a stale subform hash: it must be
		// overwritten, as Lookup reuses its out slice.
		got := Record{SubformHash: 12345}
		if err := decodeRecord(tc.v, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decode %x: %+v, want %+v", tc.v, got, tc.want)
		}
	}
}

// A value written before flagSubform existed (version 1, no flag) decodes
// with SubformHash 0. The bytes are spelled out rather than encoded, so that
// the test holds the old layout fixed.
func TestRecordOldLayout(t *testing.T) {
	v := []byte{
		1,                       // format version
		0x11,                    // synced, hex id
		0, 0, 0, 0, 0, 0, 0, 42, // hash
		0x5f, 0x3a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x6a, 0x7b, 0x8c, 0x9d, 0x0e, // data_id
		0x80, 0xc8, 0xa3, 0xcd, 0x06, // synced_at 1772676096
		1, // attempts
		0, // last error
	}
	got := Record{SubformHash: 7}
	if err := decodeRecord(v, &got); err != nil {
		t.Fatal(err)
	}
	want := Record{Hash: 42, DataID: "5f3a1b2c3d4e5f6a7b8c9d0e", State: StateSynced, Attempts: 1, SyncedAt: time.Unix(1772676096, 0).UTC()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old layout: %+v, want %+v", got, want)
	}
	b, err := appendRecord(nil, &want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, v) {
		t.Errorf("re-encoded: %x, want the old bytes %x", b, v)
	}
}

func TestDecodeCorruptSubformHash(t *testing.T) {
	good, err := appendRecord(nil, &Record{Hash: 3, SubformHash: 5, DataID: "short", State: StateSynced})
	if err != nil {
		t.Fatal(err)
	}
	zero := bytes.Clone(good)
	copy(zero[recHeader:recHeader+8], make([]byte, 8))
	plain, _ := appendRecord(nil, &Record{Hash: 3, DataID: "short", State: StateSynced})
	cases := map[string][]byte{
		"truncated subform hash": good[:recHeader+5],
		"zero subform hash":      zero,
		"flag without the hash":  append([]byte{1, plain[1] | flagSubform}, plain[2:]...),
		"hash without the flag":  append([]byte{1, good[1] &^ flagSubform}, good[2:]...),
		"truncated after":        good[:len(good)-1],
	}
	for name, v := range cases {
		var r Record
		if err := decodeRecord(v, &r); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v, want errRecord", name, err)
		}
	}
}

// FuzzDecodeRecord: decoding arbitrary bytes never panics, and whatever
// decodes survives an encode/decode round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		b, err := appendRecord(nil, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		var r Record
		if err := decodeRecord(v, &r); err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error %v does not wrap errRecord", err)
			}
			return
		}
		if st, err := recordState(v); err != nil || st != r.State {
			t.Fatalf("recordState disagrees: %v %v", st, err)
		}
		b, err := appendRecord(nil, &r)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", r, err)
		}
		var again Record
		if err := decodeRecord(b, &again); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v, want %+v", again, r)
		}
	})
}

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
		"unknown flag":   append([]byte{1, 0x21}, good[2:]...),
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

package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"checkin-sync/internal/textutil"
)

// State is where one record stands with Jiandaoyun.
type State uint8

// Record states. The zero value is invalid so that an unset field is caught
// when written.
const (
	StateSynced  State = 1 // Jiandaoyun confirmed the write; DataID is known
	StatePending State = 2 // sent in a create batch whose outcome is not settled yet
	StateFailed  State = 3 // rejected for its data; LastError says why
)

func (s State) String() string {
	switch s {
	case StateSynced:
		return "synced"
	case StatePending:
		return "pending"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

func (s State) valid() bool { return s >= StateSynced && s <= StateFailed }

// MaxLastError bounds Record.LastError so a long API message cannot bloat
// the store; longer messages are cut at a UTF-8 boundary.
const MaxLastError = 200

// Record is the checkpoint of one (userid, month).
type Record struct {
	Hash uint64 // payload hash last confirmed (or sent, when pending)
	// SubformHash is the hash of the subform fields alone of that payload
	// (mapping.Result.SubformHash), so that an update can leave out a
	// subform whose rows are unchanged; 0 when the mapping has no subform
	// or it is not known.
	SubformHash uint64
	DataID      string // Jiandaoyun _id; "" when not known
	State       State
	Attempts    uint32
	LastError   string    // at most MaxLastError bytes
	SyncedAt    time.Time // second precision, UTC; zero when never synced
}

// Record value layout, version 1 (all integers unsigned):
//
//	[0]      format version (1)
//	[1]      state in the low nibble, flags in the high nibble
//	[2:10]   hash, big-endian
//	[10:18]  subform hash, big-endian, only when flagSubform
//	data_id  12 raw bytes when flagHexID, else uvarint length + bytes
//	uvarint  synced_at, Unix seconds (0 = never)
//	uvarint  attempts
//	uvarint  length of last error + bytes
//
// Jiandaoyun ids are 24 lowercase hex digits, so packing them halves the
// largest part of the value.
//
// flagSubform is set exactly when SubformHash != 0, so the records of a
// mapping without a subform keep their size, and a value written before the
// flag existed decodes with SubformHash 0. The flag is an optional part of
// format version 1, and needs no new schema version and no migration: it
// comes in the same release as schema 2 (schemaLowerUserIDs), which has not
// shipped. Every value written by an older build (schema 1, no flag) still
// decodes, and an older build refuses a schema 2 store (ErrNewerSchema)
// before it reads a value that has the flag; even then recordState would
// reject the flag as unknown rather than misread the value.
const (
	recordV1    = 1
	flagHexID   = 0x10
	flagSubform = 0x20
	knownFlags  = flagHexID | flagSubform
	stateMask   = 0x0f
	flagsMask   = 0xf0
	recHeader   = 10
	hexIDLen    = 24
	maxDataID   = 1024
	maxUnixSec  = 253402300799 // 9999-12-31T23:59:59Z; keeps time arithmetic in range
)

var errRecord = errors.New("bad record value")

// isHexID reports whether id is exactly 24 lowercase hex digits, the only
// form that survives the raw-byte round trip unchanged.
func isHexID(id string) bool {
	if len(id) != hexIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// appendRecord appends the encoding of r to dst.
func appendRecord(dst []byte, r *Record) ([]byte, error) {
	if !r.State.valid() {
		return dst, fmt.Errorf("invalid state %d", uint8(r.State))
	}
	if len(r.DataID) > maxDataID {
		return dst, fmt.Errorf("data_id is %d bytes, over %d", len(r.DataID), maxDataID)
	}
	var sec uint64
	if !r.SyncedAt.IsZero() {
		u := r.SyncedAt.Unix()
		if u <= 0 || u > maxUnixSec {
			return dst, fmt.Errorf("synced_at %s out of range", r.SyncedAt.Format(time.RFC3339))
		}
		sec = uint64(u)
	}
	hexID := isHexID(r.DataID)
	b1 := byte(r.State)
	if hexID {
		b1 |= flagHexID
	}
	if r.SubformHash != 0 {
		b1 |= flagSubform
	}
	dst = append(dst, recordV1, b1)
	dst = binary.BigEndian.AppendUint64(dst, r.Hash)
	if r.SubformHash != 0 {
		dst = binary.BigEndian.AppendUint64(dst, r.SubformHash)
	}
	if hexID {
		var raw [hexIDLen / 2]byte
		// Cannot fail: isHexID checked every digit.
		_, _ = hex.Decode(raw[:], []byte(r.DataID))
		dst = append(dst, raw[:]...)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(r.DataID)))
		dst = append(dst, r.DataID...)
	}
	dst = binary.AppendUvarint(dst, sec)
	dst = binary.AppendUvarint(dst, uint64(r.Attempts))
	le := textutil.Truncate(r.LastError, MaxLastError)
	dst = binary.AppendUvarint(dst, uint64(len(le)))
	dst = append(dst, le...)
	return dst, nil
}

// recordState reads only the state of an encoded record, for counting.
func recordState(v []byte) (State, error) {
	if len(v) < recHeader {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the header", errRecord, len(v))
	}
	if v[0] != recordV1 {
		return 0, fmt.Errorf("%w: unknown format version %d", errRecord, v[0])
	}
	st := State(v[1] & stateMask)
	if !st.valid() || v[1]&flagsMask&^knownFlags != 0 {
		return 0, fmt.Errorf("%w: bad state byte %#x", errRecord, v[1])
	}
	return st, nil
}

// uvarintAt reads one uvarint at v[*off], advancing *off.
func uvarintAt(v []byte, off *int, what string) (uint64, error) {
	x, n := binary.Uvarint(v[*off:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: truncated or overlong %s", errRecord, what)
	}
	*off += n
	return x, nil
}

// bytesAt reads a uvarint length and that many bytes.
func bytesAt(v []byte, off *int, max int, what string) ([]byte, error) {
	n, k := binary.Uvarint(v[*off:])
	if k <= 0 {
		return nil, fmt.Errorf("%w: truncated or overlong %s length", errRecord, what)
	}
	*off += k
	if n > uint64(max) || n > uint64(len(v)-*off) {
		return nil, fmt.Errorf("%w: %s length %d out of range", errRecord, what, n)
	}
	b := v[*off : *off+int(n)]
	*off += int(n)
	return b, nil
}

// decodeRecord decodes v into r. It never panics: every length is checked,
// because the bytes come from a file that may be damaged.
func decodeRecord(v []byte, r *Record) error {
	st, err := recordState(v)
	if err != nil {
		return err
	}
	r.State = st
	r.Hash = binary.BigEndian.Uint64(v[2:10])
	off := recHeader
	r.SubformHash = 0
	if v[1]&flagSubform != 0 {
		if len(v)-off < 8 {
			return fmt.Errorf("%w: truncated subform hash", errRecord)
		}
		r.SubformHash = binary.BigEndian.Uint64(v[off:])
		if r.SubformHash == 0 {
			// Only a non-zero hash is written with the flag.
			return fmt.Errorf("%w: subform hash flag with a zero hash", errRecord)
		}
		off += 8
	}
	if v[1]&flagHexID != 0 {
		if len(v)-off < hexIDLen/2 {
			return fmt.Errorf("%w: truncated data_id", errRecord)
		}
		var buf [hexIDLen]byte
		hex.Encode(buf[:], v[off:off+hexIDLen/2])
		if r.DataID != string(buf[:]) { // reuse the caller's string when it already matches
			r.DataID = string(buf[:])
		}
		off += hexIDLen / 2
	} else {
		id, err := bytesAt(v, &off, maxDataID, "data_id")
		if err != nil {
			return err
		}
		if r.DataID != string(id) {
			r.DataID = string(id)
		}
	}
	sec, err := uvarintAt(v, &off, "synced_at")
	if err != nil {
		return err
	}
	switch {
	case sec == 0:
		r.SyncedAt = time.Time{}
	case sec > maxUnixSec:
		return fmt.Errorf("%w: synced_at %d out of range", errRecord, sec)
	default:
		r.SyncedAt = time.Unix(int64(sec), 0).UTC()
	}
	att, err := uvarintAt(v, &off, "attempts")
	if err != nil {
		return err
	}
	if att > math.MaxUint32 {
		return fmt.Errorf("%w: attempts %d out of range", errRecord, att)
	}
	r.Attempts = uint32(att)
	le, err := bytesAt(v, &off, MaxLastError, "last error")
	if err != nil {
		return err
	}
	if r.LastError != string(le) {
		r.LastError = string(le)
	}
	if off != len(v) {
		return fmt.Errorf("%w: %d trailing bytes", errRecord, len(v)-off)
	}
	return nil
}

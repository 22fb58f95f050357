package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk meta page, as far as preflight needs it. bbolt writes it
// in the machine's byte order: a page header, then the meta fields, then an
// FNV-64a checksum of the fields before it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaSum    = 56 // offset of the checksum inside the meta
	boltMetaLen    = 64
	boltNoFreelist = ^uint64(0)
)

type boltMeta struct {
	pageSize             uint32
	root, freelist, pgid uint64
	txid                 uint64
}

func parseBoltMeta(page []byte) (boltMeta, bool) {
	if len(page) < boltPageHeader+boltMetaLen {
		return boltMeta{}, false
	}
	m := page[boltPageHeader : boltPageHeader+boltMetaLen]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:boltMetaSum])
	if h.Sum64() != ne.Uint64(m[boltMetaSum:]) {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, true
}

// preflight checks, before bbolt touches the file, that it is a bbolt
// database and is not shorter than its own meta page says. bbolt would
// otherwise map a truncated file and fault, or, opened for writing, commit
// to a file that is not a store.
func preflight(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	size := fi.Size()
	readPage := func(off int64) ([]byte, error) {
		buf := make([]byte, boltPageHeader+boltMetaLen)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read store %s: %w", path, err)
		}
		return buf[:n], nil
	}

	var metas []boltMeta
	p0, err := readPage(0)
	if err != nil {
		return err
	}
	if m, ok := parseBoltMeta(p0); ok {
		metas = append(metas, m)
	}
	// The second meta sits one page in. Without a valid first meta the page
	// size is unknown, so try each size bbolt allows.
	sizes := []int64{}
	if len(metas) == 1 {
		sizes = append(sizes, int64(metas[0].pageSize))
	} else {
		for i := 0; i <= 14; i++ {
			sizes = append(sizes, int64(1024)<<i)
		}
	}
	for _, ps := range sizes {
		if ps <= 0 || ps >= size {
			break
		}
		p1, err := readPage(ps)
		if err != nil {
			return err
		}
		if m, ok := parseBoltMeta(p1); ok && int64(m.pageSize) == ps {
			metas = append(metas, m)
			break
		}
	}
	if len(metas) == 0 {
		return corruptf(path, "not a bbolt database (no valid meta page)")
	}
	m := metas[0]
	for _, o := range metas[1:] {
		if o.txid > m.txid {
			m = o
		}
	}
	ps := uint64(m.pageSize)
	if ps < 512 || ps&(ps-1) != 0 {
		return corruptf(path, "bad page size %d", ps)
	}
	if m.pgid < 2 || m.root >= m.pgid || (m.freelist >= m.pgid && m.freelist != boltNoFreelist) {
		return corruptf(path, "meta page points outside the data (root %d, freelist %d, high water %d)", m.root, m.freelist, m.pgid)
	}
	if need := m.pgid * ps; m.pgid > uint64(1<<63)/ps || uint64(size) < need {
		return corruptf(path, "truncated: %d bytes, but its pages need %d", size, m.pgid*ps)
	}
	return nil
}

package journal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// Sealing: once a business day has closed (its cut-off plus a grace period
// has passed), the node copies the day's entries into a sealed file that
// settlement reads while the switch keeps running; Pebble locks the store
// itself to one process. After sealing, Append refuses entries of that day,
// so the file is the day, complete.
//
// A sealed file, <node>-<day>.sealed:
//
//	header   "tapswitch-sealed-day/1 node=<node> day=<YYYYMMDD>\n"
//	records  u32 BE length | entry record (as under an entry key), in Seq order
//	trailer  'T' | count u64 BE | SHA-256 of every byte before the trailer
//
// Each record keeps its own CRC-32C; the reader recomputes the count and the
// digest, so a truncated or altered file is refused whole.

// ErrDaySealed is returned by Append for an entry of a day already sealed.
var ErrDaySealed = errors.New("journal: business day already sealed")

const (
	sealedFormat    = "tapswitch-sealed-day/1"
	prefixSealed    = 'z'
	sealedRecordMax = 1 << 16
)

// SealedFileName names a node's sealed file of day.
func SealedFileName(node, day string) string { return node + "-" + day + ".sealed" }

// IsSealed reports whether day is sealed.
func (j *Journal) IsSealed(day string) bool {
	j.sealedMu.RLock()
	defer j.sealedMu.RUnlock()
	return j.sealed[day]
}

// SealDay writes day's entries to dir/SealedFileName(node, day) (temporary
// file, fsync, rename, fsync of dir) and marks the day sealed. Sealing a
// sealed day again rewrites the same bytes.
func (j *Journal) SealDay(day, node, dir string) (string, error) {
	if err := ruleDay.check("day", day); err != nil {
		return "", err
	}
	j.sealedMu.Lock() // no Append of this day between the scan and the mark
	defer j.sealedMu.Unlock()
	path := filepath.Join(dir, SealedFileName(node, day))
	if err := j.writeSealed(day, node, path); err != nil {
		return "", fmt.Errorf("journal: seal %s: %w", day, err)
	}
	if err := j.db.Set(append([]byte{prefixSealed}, day...), nil, pebble.Sync); err != nil {
		return "", fmt.Errorf("journal: mark %s sealed: %w", day, err)
	}
	j.sealed[day] = true
	return path, nil
}

func (j *Journal) writeSealed(day, node, path string) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, h))
	fmt.Fprintf(w, "%s node=%s day=%s\n", sealedFormat, node, day)
	var count uint64
	err = j.ScanDay(day, func(e Entry) error {
		rec := appendRecord(nil, &e)
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(rec))))
		_, err := w.Write(rec)
		count++
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		trailer := binary.BigEndian.AppendUint64([]byte{'T'}, count)
		_, err = f.Write(h.Sum(trailer))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadSealed reads the sealed-day marks at Open.
func (j *Journal) loadSealed() error {
	j.sealed = map[string]bool{}
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSealed}, UpperBound: []byte{prefixSealed + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		j.sealed[string(it.Key()[1:])] = true
	}
	return it.Close()
}

// ReadSealed reads a sealed file: it checks the header, every record's CRC
// and layout, the count and the digest, and only then calls fn with each
// entry in order. It returns the node and day the file is of.
func ReadSealed(path string, fn func(Entry) error) (node, day string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	entries, node, day, err := parseSealed(data)
	if err != nil {
		return "", "", fmt.Errorf("sealed file %s: %w", path, err)
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return node, day, err
		}
	}
	return node, day, nil
}

func parseSealed(data []byte) (entries []Entry, node, day string, err error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 || len(data)-nl-1 < 1+8+sha256.Size {
		return nil, "", "", errors.New("truncated")
	}
	var format string
	if _, err := fmt.Sscanf(string(data[:nl]), "%s node=%s day=%s", &format, &node, &day); err != nil || format != sealedFormat {
		return nil, "", "", fmt.Errorf("bad header %q", data[:nl])
	}
	trailer := data[len(data)-1-8-sha256.Size:]
	body := data[:len(data)-len(trailer)]
	if trailer[0] != 'T' {
		return nil, "", "", errors.New("no trailer")
	}
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer[9:]) {
		return nil, "", "", errors.New("digest mismatch")
	}
	rest := body[nl+1:]
	for len(rest) > 0 {
		if len(rest) < 4 || int(binary.BigEndian.Uint32(rest)) > min(len(rest)-4, sealedRecordMax) {
			return nil, "", "", fmt.Errorf("record %d: bad length", len(entries)+1)
		}
		n := int(binary.BigEndian.Uint32(rest))
		e, err := decodeRecord(rest[4 : 4+n])
		if err != nil || e.BusinessDay != day || e.NodeID != node {
			return nil, "", "", fmt.Errorf("record %d: %v (day %s node %s)", len(entries)+1, err, e.BusinessDay, e.NodeID)
		}
		entries = append(entries, e)
		rest = rest[4+n:]
	}
	if count := binary.BigEndian.Uint64(trailer[1:]); count != uint64(len(entries)) {
		return nil, "", "", fmt.Errorf("trailer counts %d records, file has %d", count, len(entries))
	}
	return entries, node, day, nil
}

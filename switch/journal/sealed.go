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
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/internal/durable"
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
	// keyDayFloor holds the first business day new entries may have, set
	// when a day is closed before its cut-off (CloseDay).
	keyDayFloor = "yfloor"
)

// SealedFileName names a node's sealed file of day.
func SealedFileName(node, day string) string { return node + "-" + day + ".sealed" }

// IsSealed reports whether day is sealed.
func (j *Journal) IsSealed(day string) bool {
	j.sealedMu.RLock()
	defer j.sealedMu.RUnlock()
	return j.sealed[day]
}

// SealedDays returns the days sealed, ascending.
func (j *Journal) SealedDays() []string {
	j.sealedMu.RLock()
	defer j.sealedMu.RUnlock()
	days := make([]string, 0, len(j.sealed))
	for d := range j.sealed {
		days = append(days, d)
	}
	slices.Sort(days)
	return days
}

// SealDay writes day's entries to dir/SealedFileName(node, day) (temporary
// file, fsync, rename, fsync of dir) and marks the day sealed. A day
// without entries gives a file of zero records: "no traffic", told apart
// from a missing file. Sealing a sealed day again rewrites the same bytes.
func (j *Journal) SealDay(day, node, dir string) (string, error) {
	if err := ruleDay.check("day", day); err != nil {
		return "", err
	}
	j.sealedMu.Lock() // no Append of this day between the scan and the mark
	defer j.sealedMu.Unlock()
	return j.sealLocked(day, node, dir)
}

// CloseDay closes the business day open at now before its cut-off and
// seals it: from then on entries belong to the next day (the floor is
// durable, so a restart keeps it). It is for development only (switchd
// -dev's close-day, on demand); a production day closes at its cut-off.
func (j *Journal) CloseDay(now time.Time, node, dir string) (day, path string, err error) {
	j.sealedMu.Lock()
	defer j.sealedMu.Unlock()
	day = j.dayOfLocked(now)
	next := NextDay(day)
	if err := j.set([]byte(keyDayFloor), []byte(next)); err != nil {
		return "", "", fmt.Errorf("journal: close %s: %w", day, err)
	}
	j.dayFloor = next
	path, err = j.sealLocked(day, node, dir)
	return day, path, err
}

// dayOfLocked is the business day of an entry decided at t: by the
// cut-off, but never before the floor CloseDay set. sealedMu is held.
func (j *Journal) dayOfLocked(t time.Time) string {
	day := BusinessDay(t, j.cutoff)
	if day < j.dayFloor {
		return j.dayFloor
	}
	return day
}

func (j *Journal) sealLocked(day, node, dir string) (string, error) {
	path := filepath.Join(dir, SealedFileName(node, day))
	if err := j.writeSealed(day, node, path); err != nil {
		return "", fmt.Errorf("journal: seal %s: %w", day, err)
	}
	if err := j.set(append([]byte{prefixSealed}, day...), nil); err != nil {
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
	return durable.SyncDir(filepath.Dir(path))
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
	if err := it.Close(); err != nil {
		return err
	}
	floor, closer, err := j.db.Get([]byte(keyDayFloor))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	j.dayFloor = string(floor)
	return nil
}

// ReadSealed reads a sealed file in two passes with bounded memory: the
// first checks the header, the trailer's digest and the record count; the
// second decodes each record (checking its CRC and that it belongs to the
// file's node and day) and calls fn, in Seq order. It returns the node and
// day the file is of. An error from the second pass can only be a broken
// record the digest did not catch, or fn's.
func ReadSealed(path string, fn func(Entry) error) (node, day string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	count, bodyLen, err := checkSealedDigest(f)
	if err != nil {
		return "", "", fmt.Errorf("sealed file %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", "", err
	}
	r := bufio.NewReaderSize(io.LimitReader(f, bodyLen), 64<<10)
	node, day, err = readSealedHeader(r)
	if err != nil {
		return "", "", fmt.Errorf("sealed file %s: %w", path, err)
	}
	n, err := readSealedRecords(r, node, day, fn)
	if err == nil && n != count {
		err = fmt.Errorf("trailer counts %d records, file has %d", count, n)
	}
	if err != nil {
		return node, day, fmt.Errorf("sealed file %s: %w", path, err)
	}
	return node, day, nil
}

// sealedTrailerBytes is 'T', the count and the SHA-256.
const sealedTrailerBytes = 1 + 8 + sha256.Size

// checkSealedDigest hashes everything before the trailer and compares.
func checkSealedDigest(f *os.File) (count uint64, bodyLen int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	bodyLen = st.Size() - sealedTrailerBytes
	if bodyLen < int64(len(sealedFormat)) {
		return 0, 0, errors.New("truncated")
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, bodyLen); err != nil {
		return 0, 0, err
	}
	trailer := make([]byte, sealedTrailerBytes)
	if _, err := io.ReadFull(f, trailer); err != nil {
		return 0, 0, err
	}
	if trailer[0] != 'T' {
		return 0, 0, errors.New("no trailer")
	}
	if !bytes.Equal(h.Sum(nil), trailer[9:]) {
		return 0, 0, errors.New("digest mismatch")
	}
	return binary.BigEndian.Uint64(trailer[1:]), bodyLen, nil
}

func readSealedHeader(r *bufio.Reader) (node, day string, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", errors.New("no header")
	}
	var format string
	if _, err := fmt.Sscanf(line, "%s node=%s day=%s", &format, &node, &day); err != nil || format != sealedFormat {
		return "", "", fmt.Errorf("bad header %q", line)
	}
	return node, day, nil
}

func readSealedRecords(r *bufio.Reader, node, day string, fn func(Entry) error) (uint64, error) {
	var n uint64
	var size [4]byte
	buf := make([]byte, 0, 512)
	for {
		if _, err := io.ReadFull(r, size[:]); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, fmt.Errorf("record %d: %w", n+1, err)
		}
		l := int(binary.BigEndian.Uint32(size[:]))
		if l > sealedRecordMax {
			return n, fmt.Errorf("record %d: length %d", n+1, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return n, fmt.Errorf("record %d: %w", n+1, err)
		}
		e, err := decodeRecord(buf)
		if err != nil || e.BusinessDay != day || e.NodeID != node {
			return n, fmt.Errorf("record %d: %v (day %s node %s)", n+1, err, e.BusinessDay, e.NodeID)
		}
		n++
		if err := fn(e); err != nil {
			return n, err
		}
	}
}

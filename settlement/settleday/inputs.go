package settleday

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// Node is one switch node of the network: its ID and the directory it
// seals its business days into (DATA/sealed).
type Node struct {
	ID        string
	SealedDir string
}

// input is the sealed file of one node for the day.
type input struct {
	node, path string
}

// dayFirst is the earliest business day settle accepts: the network has
// no day before it, so an earlier date is a typing error, not an empty day.
const dayFirst = "20000101"

// CheckDay checks day is a real date (YYYYMMDD) from 2000-01-01 on.
func CheckDay(day string) error {
	t, err := time.Parse("20060102", day)
	if err != nil || t.Format("20060102") != day {
		return fmt.Errorf("day %q is not a date (YYYYMMDD)", day)
	}
	if day < dayFirst {
		return fmt.Errorf("day %s is before %s: no switch node journaled it", day, dayFirst)
	}
	return nil
}

// sealedInputs finds the sealed file of day of every node not left out,
// in node-ID order (the order the clearing writer requires). Every node
// seals every closed day, traffic or not, so a missing file is never an
// empty day: it is an error naming the node and the day.
func sealedInputs(nodes []Node, without []string, day string) ([]input, error) {
	if len(nodes) == 0 {
		return nil, errors.New("no switch nodes to settle")
	}
	seenID, seenDir := map[string]bool{}, map[string]string{}
	for _, n := range nodes {
		dir := filepath.Clean(n.SealedDir)
		switch {
		case n.ID == "":
			return nil, fmt.Errorf("a node in %s has no ID", dir)
		case seenID[n.ID]:
			return nil, fmt.Errorf("node %s is listed twice", n.ID)
		case seenDir[dir] != "":
			return nil, fmt.Errorf("nodes %s and %s name the same directory %s", seenDir[dir], n.ID, dir)
		}
		seenID[n.ID], seenDir[dir] = true, n.ID
	}
	for _, w := range without {
		if !seenID[w] {
			return nil, fmt.Errorf("left-out node %s is not a node of the network", w)
		}
	}
	var in []input
	for _, n := range nodes {
		if slices.Contains(without, n.ID) {
			continue
		}
		path := filepath.Join(n.SealedDir, journal.SealedFileName(n.ID, day))
		if _, err := os.Stat(path); err != nil {
			return nil, missingError(n, day, err)
		}
		in = append(in, input{node: n.ID, path: path})
	}
	if len(in) == 0 {
		return nil, errors.New("every node is left out: nothing to settle")
	}
	slices.SortFunc(in, func(a, b input) int { return strings.Compare(a.node, b.node) })
	return in, nil
}

// missingError says why a node's sealed file of day is not there, from
// what else the node's directory holds.
func missingError(n Node, day string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("node %s, day %s: %w", n.ID, day, err)
	}
	if _, derr := os.Stat(n.SealedDir); derr != nil {
		return fmt.Errorf("node %s: sealed directory %s: %w", n.ID, n.SealedDir, derr)
	}
	first, last := SealedRange(n.SealedDir, n.ID)
	switch {
	case first == "":
		return fmt.Errorf("node %s has no sealed file of day %s: %s holds no sealed day of that node", n.ID, day, n.SealedDir)
	case day > last:
		return fmt.Errorf("node %s has not sealed day %s yet (its last sealed day is %s; a node seals a day seal_grace after its cut-off, or at its next start)", n.ID, day, last)
	case day < first:
		return fmt.Errorf("node %s has no sealed file of day %s, which is before its first sealed day %s: if the node did not exist then, leave it out by name (settle -without %s); if it did, its file is lost (docs/reliability.md, \"A node or its sealed file lost\")", n.ID, day, first, n.ID)
	}
	return fmt.Errorf("node %s has no sealed file of day %s, though it sealed %s to %s: the file is lost (docs/reliability.md, \"A node or its sealed file lost\")", n.ID, day, first, last)
}

// SealedRange returns the first and last business day of node sealed in
// dir ("" when none). A node's file is <node>-<YYYYMMDD>.sealed; the day is
// always the last eight digits, so node IDs containing '-' are no problem.
func SealedRange(dir, node string) (first, last string) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.sealed"))
	for _, p := range names {
		id, day, ok := ParseSealedName(filepath.Base(p))
		if !ok || id != node {
			continue
		}
		if first == "" || day < first {
			first = day
		}
		if day > last {
			last = day
		}
	}
	return first, last
}

// ParseSealedName splits a sealed file's name into node ID and day.
func ParseSealedName(name string) (node, day string, ok bool) {
	base, found := strings.CutSuffix(name, ".sealed")
	if !found || len(base) < 10 || base[len(base)-9] != '-' {
		return "", "", false
	}
	day = base[len(base)-8:]
	if _, err := time.Parse("20060102", day); err != nil {
		return "", "", false
	}
	return base[:len(base)-9], day, true
}

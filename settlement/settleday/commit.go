package settleday

import (
	"os"
	"path/filepath"
	"sort"
)

// commit closes every clearing file, writes the net and exceptions
// reports, syncs all of them and only then renames them into place.
func (d *day) commit() ([]string, error) {
	var pending []*output
	for _, o := range d.files {
		if _, err := o.clr.Close(); err != nil {
			return nil, err
		}
		if err := o.buf.Flush(); err != nil {
			return nil, err
		}
		pending = append(pending, o)
	}
	report := d.net.Report()
	for name, data := range map[string][]byte{
		"net-" + d.cfg.Day + ".txt":         report.Text(),
		"net-" + d.cfg.Day + ".json":        report.JSON(),
		exceptionsName(d.cfg.Day) + ".txt":  d.exceptions.Text(),
		exceptionsName(d.cfg.Day) + ".json": d.exceptions.JSON(),
	} {
		o, err := d.writeWhole(name, data)
		if err != nil {
			return nil, err
		}
		pending = append(pending, o)
	}
	for _, o := range pending {
		if err := o.f.Sync(); err != nil {
			return nil, err
		}
		if err := o.f.Close(); err != nil {
			return nil, err
		}
		o.f = nil
	}
	var names []string
	for _, o := range pending {
		if err := os.Rename(o.tmp, o.final); err != nil {
			return nil, err
		}
		names = append(names, filepath.Base(o.final))
	}
	d.files = nil
	sort.Strings(names)
	return names, syncDir(d.dir)
}

func (d *day) writeWhole(name string, data []byte) (*output, error) {
	o := &output{final: filepath.Join(d.dir, name), tmp: filepath.Join(d.dir, name+".tmp")}
	f, err := os.OpenFile(o.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	o.f = f
	_, err = f.Write(data)
	return o, err
}

// abandon closes and removes whatever a failed run left.
func (d *day) abandon() {
	for _, o := range d.files {
		if o.f != nil {
			o.f.Close()
		}
		os.Remove(o.tmp)
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

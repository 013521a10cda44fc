package issuersim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	// The default cut-off is in Asia/Shanghai; embedding the zone database
	// keeps it working on machines without zoneinfo.
	_ "time/tzdata"
)

// Cutoff is the local time of day at which the issuer's business day
// closes: a posting at or after it belongs to the next day.
//
// The issuer keeps its own cut-off rather than importing the switch's
// journal: it plays another bank, whose books the network reconciles
// against, not a part of the switch. Run both with the same cut-off (the
// network's default is the same, 23:00 Asia/Shanghai) or every posting in
// the seconds around it is a reconciliation break, as it would be between
// real banks.
type Cutoff struct {
	Hour, Minute int
	Location     *time.Location
}

const defaultCutoffZone = "Asia/Shanghai"

// DefaultCutoff is 23:00 Asia/Shanghai.
func DefaultCutoff() Cutoff {
	loc, err := time.LoadLocation(defaultCutoffZone)
	if err != nil {
		// time/tzdata is linked in, so this is a broken build, not bad input.
		panic(fmt.Sprintf("issuersim: load %s: %v", defaultCutoffZone, err))
	}
	return Cutoff{Hour: 23, Location: loc}
}

// ParseCutoff reads a cut-off as "HH:MM" and a time zone name.
func ParseCutoff(hhmm, zone string) (Cutoff, error) {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return Cutoff{}, fmt.Errorf("time zone %q: %w", zone, err)
	}
	h, m, ok := strings.Cut(hhmm, ":")
	hour, errH := strconv.Atoi(h)
	minute, errM := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || errH != nil || errM != nil {
		return Cutoff{}, fmt.Errorf("cut-off %q: want HH:MM", hhmm)
	}
	c := Cutoff{Hour: hour, Minute: minute, Location: loc}
	return c, c.Validate()
}

// Validate checks the cut-off is a time of day in a zone.
func (c Cutoff) Validate() error {
	if c.Location == nil {
		return fmt.Errorf("cut-off %s has no time zone", c)
	}
	if c.Hour < 0 || c.Hour > 23 || c.Minute < 0 || c.Minute > 59 {
		return fmt.Errorf("cut-off %s is not a time of day", c)
	}
	return nil
}

// String shows the cut-off as an operator writes it, e.g. "23:00 Asia/Shanghai".
func (c Cutoff) String() string {
	name := "<no zone>"
	if c.Location != nil {
		name = c.Location.String()
	}
	return fmt.Sprintf("%02d:%02d %s", c.Hour, c.Minute, name)
}

// BusinessDay returns the business day (YYYYMMDD) t belongs to: the local
// date of t, plus one day at or after the cut-off. A cut-off of 00:00
// closes the day at midnight, so the day is the local date. This is the
// switch journal's rule, so both sides label a posting alike.
func (c Cutoff) BusinessDay(t time.Time) string {
	local := t.In(c.Location)
	y, m, d := local.Date()
	cut := c.Hour*60 + c.Minute
	if cut > 0 && local.Hour()*60+local.Minute() >= cut {
		d++ // time.Date normalises the 32nd of a month
	}
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Format("20060102")
}

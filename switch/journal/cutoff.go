package journal

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	// The default cut-off is in Asia/Shanghai; embedding the zone database
	// keeps DefaultCutoff working in minimal containers without zoneinfo.
	_ "time/tzdata"
)

// Cutoff is the local time of day at which a business day closes: an entry
// decided at or after it belongs to the next day.
type Cutoff struct {
	Hour, Minute int
	Location     *time.Location
}

// defaultCutoffZone is the network's home time zone.
const defaultCutoffZone = "Asia/Shanghai"

// DefaultCutoff is 23:00 Asia/Shanghai.
func DefaultCutoff() Cutoff {
	loc, err := time.LoadLocation(defaultCutoffZone)
	if err != nil {
		// time/tzdata is linked in, so this is a broken build, not bad input.
		panic(fmt.Sprintf("journal: load %s: %v", defaultCutoffZone, err))
	}
	return Cutoff{Hour: 23, Minute: 0, Location: loc}
}

// String shows the cut-off as an operator writes it, e.g. "23:00 Asia/Shanghai".
func (c Cutoff) String() string {
	name := "<nil location>"
	if c.Location != nil {
		name = c.Location.String()
	}
	return fmt.Sprintf("%02d:%02d %s", c.Hour, c.Minute, name)
}

// ParseCutoff reads a cut-off as "HH:MM" in a time zone, e.g. "23:00" and
// "Asia/Shanghai", as configuration files write it.
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

// BusinessDay is BusinessDay(t, c).
func (c Cutoff) BusinessDay(t time.Time) string { return BusinessDay(t, c) }

// Validate checks the cut-off is a time of day in a time zone.
func (c Cutoff) Validate() error { return c.validate() }

func (c Cutoff) validate() error {
	if c.Location == nil {
		return fmt.Errorf("journal: cut-off %s has no location", c)
	}
	if c.Hour < 0 || c.Hour > 23 || c.Minute < 0 || c.Minute > 59 {
		return fmt.Errorf("journal: cut-off %s is not a time of day", c)
	}
	return nil
}

// BusinessDay returns the business day (YYYYMMDD) that t belongs to: the
// local date of t in c.Location, plus one day when the local time of day is
// at or after the cut-off. A cut-off of 00:00 means the day closes at
// midnight, so the business day is simply the local date (the rule read
// literally would label every entry with tomorrow's date).
// c.Location must not be nil.
func BusinessDay(t time.Time, c Cutoff) string {
	local := t.In(c.Location)
	y, m, d := local.Date()
	cut := c.Hour*60 + c.Minute
	if cut > 0 && local.Hour()*60+local.Minute() >= cut {
		d++ // time.Date normalises the 32nd of a month and the 1st of a year
	}
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Format("20060102")
}

// NextDay is the business day after day (YYYYMMDD).
func NextDay(day string) string { return addDays(day, 1) }

// PrevDay is the business day before day (YYYYMMDD).
func PrevDay(day string) string { return addDays(day, -1) }

func addDays(day string, n int) string {
	t, err := time.Parse("20060102", day)
	if err != nil {
		panic(fmt.Sprintf("journal: business day %q is not YYYYMMDD", day)) // days come from BusinessDay or checked input
	}
	return t.AddDate(0, 0, n).Format("20060102")
}

package journal

import (
	"testing"
	"time"
)

func TestBusinessDay(t *testing.T) {
	def := DefaultCutoff()
	sh := def.Location
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc1830 := Cutoff{Hour: 18, Minute: 30, Location: time.UTC}
	midnight := Cutoff{Hour: 0, Minute: 0, Location: sh}
	tests := []struct {
		name string
		t    time.Time
		c    Cutoff
		want string
	}{
		{"one second before cut-off", time.Date(2024, 3, 15, 22, 59, 59, 0, sh), def, "20240315"},
		{"last nanosecond before cut-off", time.Date(2024, 3, 15, 22, 59, 59, 999999999, sh), def, "20240315"},
		{"at cut-off", time.Date(2024, 3, 15, 23, 0, 0, 0, sh), def, "20240316"},
		{"after local midnight", time.Date(2024, 3, 16, 0, 30, 0, 0, sh), def, "20240316"},
		{"start of local day", time.Date(2024, 3, 16, 0, 0, 0, 0, sh), def, "20240316"},
		{"UTC input before cut-off", time.Date(2024, 3, 15, 14, 59, 59, 0, time.UTC), def, "20240315"},
		{"UTC input at cut-off", time.Date(2024, 3, 15, 15, 0, 0, 0, time.UTC), def, "20240316"},
		{"UTC date is the day before local", time.Date(2024, 6, 30, 20, 0, 0, 0, time.UTC), def, "20240701"},
		{"month end at cut-off", time.Date(2024, 1, 31, 23, 0, 0, 0, sh), def, "20240201"},
		{"leap day at cut-off", time.Date(2024, 2, 29, 23, 30, 0, 0, sh), def, "20240301"},
		{"28 Feb, not a leap year", time.Date(2023, 2, 28, 23, 0, 0, 0, sh), def, "20230301"},
		{"28 Feb, leap year", time.Date(2024, 2, 28, 23, 0, 0, 0, sh), def, "20240229"},
		{"year end before cut-off", time.Date(2024, 12, 31, 22, 59, 59, 0, sh), def, "20241231"},
		{"year end at cut-off", time.Date(2024, 12, 31, 23, 0, 0, 0, sh), def, "20250101"},
		{"year end at cut-off, UTC input", time.Date(2024, 12, 31, 15, 0, 0, 0, time.UTC), def, "20250101"},
		{"custom 18:30 UTC, before", time.Date(2024, 3, 15, 18, 29, 59, 0, time.UTC), utc1830, "20240315"},
		{"custom 18:30 UTC, at", time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC), utc1830, "20240316"},
		{"custom 18:30 UTC, Shanghai input", time.Date(2024, 3, 16, 2, 30, 0, 0, sh), utc1830, "20240316"},
		{"midnight cut-off is the local date", time.Date(2024, 3, 15, 23, 59, 59, 0, sh), midnight, "20240315"},
		{"midnight cut-off at midnight", time.Date(2024, 3, 16, 0, 0, 0, 0, sh), midnight, "20240316"},
		{"New York on the DST change", time.Date(2024, 3, 10, 21, 0, 0, 0, ny), Cutoff{21, 0, ny}, "20240311"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BusinessDay(tc.t, tc.c); got != tc.want {
				t.Errorf("BusinessDay(%s, %s) = %s, want %s", tc.t.Format(time.RFC3339Nano), tc.c, got, tc.want)
			}
		})
	}
}

func TestDefaultCutoff(t *testing.T) {
	c := DefaultCutoff()
	if c.Hour != 23 || c.Minute != 0 || c.Location.String() != "Asia/Shanghai" {
		t.Fatalf("DefaultCutoff() = %s, want 23:00 Asia/Shanghai", c)
	}
}

func TestCutoffValidate(t *testing.T) {
	bad := []Cutoff{
		{Hour: 23},
		{Hour: 24, Location: time.UTC},
		{Hour: -1, Location: time.UTC},
		{Hour: 23, Minute: 60, Location: time.UTC},
	}
	for _, c := range bad {
		if err := c.validate(); err == nil {
			t.Errorf("cut-off %s accepted", c)
		}
		if _, err := Open(t.TempDir(), Options{Cutoff: c}); err == nil {
			t.Errorf("Open with cut-off %s succeeded", c)
		}
	}
}

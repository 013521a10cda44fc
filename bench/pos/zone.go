package pos

import (
	"time"
	_ "time/tzdata" // terminals print local time in Asia/Shanghai on any machine
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

package world

import (
	"fmt"
	"strings"
)

// The metro of the six transit cities (docs/transit.md, "The six cities"):
// a few stations each, one gate per station, and the city's fare. A gate
// ID is the operator's 4-digit code (configs/issuers.yaml), then the line
// (2 digits), the station on it (2) and the gate at the station (4).
//
// Five cities charge a flat fare at one tap. Beijing charges by distance
// (北京地铁票价: 3 yuan up to 6 km, 4 yuan up to 12 km, 5 yuan up to 22 km,
// 6 yuan up to 32 km, then 1 yuan more per 20 km or part of it), which
// needs a tap-in and a tap-out. The station positions are in metres along
// Line 1 and its Batong extension, approximate, with Pingguoyuan at 0:
// enough for every fare band to be reachable, not a survey (the real fare
// is by the shortest path over the whole network).

// Station is one metro station and its gate.
type Station struct {
	Name   string // unique across the world, so a command can name it
	Gate   string // 12 digits
	Metres int64  // position on the line; used by a distance fare only
}

// City is a transit operator's metro.
type City struct {
	Name     string
	Issuer   string // the operator's member ID in configs/issuers.yaml
	Operator string // its 4-digit operator code
	// Flat is the fare in fen of one tap; 0 for a distance fare.
	Flat     int64
	Stations []Station
}

// Fares of the flat cities, in fen (their single-journey starting fares).
const (
	fareShanghai  = 3_00
	fareGuangzhou = 2_00
	fareShenzhen  = 2_00
	fareWuhan     = 2_00
	fareFoshan    = 2_00
)

var cities = []City{
	{Name: "Beijing", Issuer: "BJT", Operator: "0010", Stations: []Station{
		{"Pingguoyuan", "001001010001", 0},
		{"Babaoshan", "001001020001", 4_900},
		{"Gongzhufen", "001001030001", 10_500},
		{"Xidan", "001001040001", 15_800},
		{"Wangfujing", "001001050001", 18_000},
		{"Guomao", "001001060001", 22_600},
		{"Sihui East", "001001070001", 28_800},
		{"Tuqiao", "001001080001", 49_800},
	}},
	{Name: "Shanghai", Issuer: "SPTC", Operator: "0021", Flat: fareShanghai, Stations: []Station{
		{"Lujiazui", "002102010001", 0},
		{"Zhongshan Park", "002102020001", 0},
		{"Xujiahui", "002101010001", 0},
		{"Hongqiao Railway Station", "002102030001", 0},
	}},
	{Name: "Guangzhou", Issuer: "LNT", Operator: "0020", Flat: fareGuangzhou, Stations: []Station{
		{"Tiyu Xilu", "002001010001", 0},
		{"Gongyuanqian", "002001020001", 0},
		{"Guangzhou South Railway Station", "002002010001", 0},
	}},
	{Name: "Shenzhen", Issuer: "SZT", Operator: "0755", Flat: fareShenzhen, Stations: []Station{
		{"Luohu", "075501010001", 0},
		{"Futian", "075501020001", 0},
		{"Shenzhen North", "075504010001", 0},
	}},
	{Name: "Wuhan", Issuer: "WHT", Operator: "0027", Flat: fareWuhan, Stations: []Station{
		{"Jianghan Road", "002702010001", 0},
		{"Hankou Railway Station", "002702020001", 0},
		{"Optics Valley Square", "002702030001", 0},
	}},
	{Name: "Foshan", Issuer: "FST", Operator: "0757", Flat: fareFoshan, Stations: []Station{
		{"Zumiao", "075701010001", 0},
		{"Qiandenghu", "075701020001", 0},
		{"Pujun Beilu", "075701030001", 0},
	}},
}

// Cities returns the six cities, Beijing first. The caller may not modify
// the stations.
func Cities() []City { return cities }

// CityOfGate returns the city and station of a gate of the world.
func CityOfGate(gate string) (City, Station, bool) {
	for _, c := range cities {
		for _, s := range c.Stations {
			if s.Gate == gate {
				return c, s, true
			}
		}
	}
	return City{}, Station{}, false
}

// StationNamed returns the station called name (case and surrounding
// spaces ignored) and its city.
func StationNamed(name string) (City, Station, error) {
	name = strings.TrimSpace(name)
	for _, c := range cities {
		for _, s := range c.Stations {
			if strings.EqualFold(s.Name, name) {
				return c, s, nil
			}
		}
	}
	return City{}, Station{}, fmt.Errorf("no station %q in the world's six cities", name)
}

// Distance reports whether the city charges by distance.
func (c City) Distance() bool { return c.Flat == 0 }

// Between returns the distance fare (the Beijing rule, the only distance
// fare of the world) from entry gate to exit gate, false
// when either is not one of the city's gates.
func (c City) Between(entry, exit string) (int64, bool) {
	in, ok1 := c.station(entry)
	out, ok2 := c.station(exit)
	if !ok1 || !ok2 {
		return 0, false
	}
	d := out.Metres - in.Metres
	if d < 0 {
		d = -d
	}
	return BeijingFare(d), true
}

// Max returns the highest distance fare between two of the city's
// stations: what a missed tap-out costs.
func (c City) Max() int64 {
	var lo, hi int64
	for i, s := range c.Stations {
		if i == 0 || s.Metres < lo {
			lo = s.Metres
		}
		if i == 0 || s.Metres > hi {
			hi = s.Metres
		}
	}
	return BeijingFare(hi - lo)
}

func (c City) station(gate string) (Station, bool) {
	for _, s := range c.Stations {
		if s.Gate == gate {
			return s, true
		}
	}
	return Station{}, false
}

// BeijingFare is the Beijing subway fare in fen for a journey of metres:
// 3 yuan up to 6 km, 4 up to 12, 5 up to 22, 6 up to 32 (each bound
// included), then 1 yuan more for each further 20 km or part of it.
func BeijingFare(metres int64) int64 {
	switch {
	case metres <= 6_000:
		return 3_00
	case metres <= 12_000:
		return 4_00
	case metres <= 22_000:
		return 5_00
	case metres <= 32_000:
		return 6_00
	}
	return 6_00 + (metres-32_000+19_999)/20_000*1_00
}

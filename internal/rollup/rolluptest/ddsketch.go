package rolluptest

import "github.com/DataDog/sketches-go/ddsketch"

func newDurations() *ddsketch.DDSketch {
	s, err := ddsketch.LogUnboundedDenseDDSketch(0.01)
	if err != nil {
		panic(err)
	}
	return s
}

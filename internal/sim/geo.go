package sim

import (
	"fmt"
	"io"
	"net"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// WriteGeoIP writes a MaxMind DB in the GeoIP2-City layout (country and
// first-level subdivision) that maps the simulated client addresses to
// their countries, so that a server started with it derives the same
// countries as the fleet's ground truth.
func WriteGeoIP(w io.Writer) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		Description:             map[string]string{"en": "Provision fleet simulator addresses"},
		IncludeReservedNetworks: true, // the simulated blocks are private addresses
		Languages:               []string{"en"},
		RecordSize:              24,
		BuildEpoch:              1700000000, // fixed, so the file is reproducible
	})
	if err != nil {
		return err
	}
	for ci, c := range countries {
		for si, sub := range c.Subdivisions {
			_, network, err := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/18", 16+ci, 64*si))
			if err != nil {
				return err
			}
			rec := mmdbtype.Map{
				"country": mmdbtype.Map{
					"iso_code": mmdbtype.String(c.Code),
					"names":    mmdbtype.Map{"en": mmdbtype.String(c.Name)},
				},
				"subdivisions": mmdbtype.Slice{mmdbtype.Map{
					"iso_code": mmdbtype.String(sub),
				}},
			}
			if err := tree.Insert(network, rec); err != nil {
				return err
			}
		}
	}
	_, err = tree.WriteTo(w)
	return err
}

package manifest

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The parts of the manifest that only the notice reads: who the controller
// is, on which legal basis each purpose rests, what each recipient does with
// the data, what each region's law requires to be said, and the person's
// rights. They are checked as strictly as the items, so that a notice can
// never go out with a part missing.

func (p *parser) controller(n *yaml.Node) Controller {
	f := p.mapping(n, "controller", "name", "address", "contact")
	if !p.require(f, n, "controller", "name", "address", "contact") {
		return Controller{}
	}
	return Controller{
		Name:    p.text(f["name"], "controller.name"),
		Address: p.text(f["address"], "controller.address"),
		Contact: p.text(f["contact"], "controller.contact"),
	}
}

func (p *parser) purpose(n *yaml.Node, path string) (Purpose, bool) {
	f := p.mapping(n, path, "id", "description", "quote", "legal_basis", "publication")
	if !p.require(f, n, path, "id", "description", "quote", "legal_basis") {
		return Purpose{}, false
	}
	pu := Purpose{
		ID:          p.id(f["id"], path+".id"),
		Description: p.text(f["description"], path+".description"),
		Quote:       p.text(f["quote"], path+".quote"),
		LegalBasis:  p.str(f["legal_basis"], path+".legal_basis"),
	}
	if !slices.Contains(LegalBases, pu.LegalBasis) {
		p.fail(f["legal_basis"], path+".legal_basis", "unknown legal basis %q (known: %s)", pu.LegalBasis, strings.Join(LegalBases, ", "))
	}
	if f["publication"] != nil {
		pu.Publication = p.text(f["publication"], path+".publication")
	}
	return pu, true
}

// quotes reads a non-empty list of quotations of the terms.
func (p *parser) quotes(n *yaml.Node, path string) []string {
	list := p.list(n, path)
	if n != nil && n.Kind == yaml.SequenceNode && len(list) == 0 {
		p.fail(n, path, "must quote at least one span of the terms")
	}
	for i, q := range list {
		if strings.TrimSpace(q) == "" {
			p.fail(n.Content[i], fmt.Sprintf("%s[%d]", path, i), "must not be empty")
		}
	}
	return list
}

// recipients reads the description of every known recipient; each must be
// described exactly once.
func (p *parser) recipients(n *yaml.Node) []Recipient {
	var out []Recipient
	for i, e := range p.sequence(n, "recipients") {
		path := fmt.Sprintf("recipients[%d]", i)
		f := p.mapping(e, path, "id", "description", "quotes", "processing_countries", "lower_protection",
			"safeguards", "retention", "retention_days", "terms")
		if !p.require(f, e, path, "id", "description", "quotes", "processing_countries", "lower_protection",
			"safeguards", "retention", "terms") {
			continue
		}
		r := Recipient{
			ID:                  p.str(f["id"], path+".id"),
			Description:         p.text(f["description"], path+".description"),
			Quotes:              p.quotes(f["quotes"], path+".quotes"),
			ProcessingCountries: p.text(f["processing_countries"], path+".processing_countries"),
			LowerProtection:     p.boolean(f["lower_protection"], path+".lower_protection"),
			Safeguards:          p.text(f["safeguards"], path+".safeguards"),
			Retention:           p.text(f["retention"], path+".retention"),
			Terms:               p.text(f["terms"], path+".terms"),
		}
		switch {
		case recipientBit(r.ID) == 0:
			p.fail(f["id"], path+".id", "unknown recipient %q (known: %s)", r.ID, strings.Join(Recipients, ", "))
			continue
		case slices.ContainsFunc(out, func(o Recipient) bool { return o.ID == r.ID }):
			p.fail(f["id"], path+".id", "recipient %q is described twice", r.ID)
			continue
		}
		// The vendor keeps each item for the item's own retention; every
		// other recipient states one period for what it receives.
		switch {
		case f["retention_days"] != nil:
			r.RetentionDays = p.retentionDays(f, path)
		case r.ID != "vendor":
			p.fail(e, path+".retention_days", "missing: say how many days %s keeps the data", r.ID)
		}
		out = append(out, r)
	}
	return out
}

// regionNotices reads one notice per region of the terms; each must name
// the law's words for every legal basis the purposes use, and California's
// must make its statement on sale and sharing.
func (p *parser) regionNotices(n *yaml.Node, m *Manifest) []RegionNotice {
	var out []RegionNotice
	for i, e := range p.sequence(n, "region_notices") {
		path := fmt.Sprintf("region_notices[%d]", i)
		f := p.mapping(e, path, "id", "name", "law", "bases", "authority", "statement")
		if !p.require(f, e, path, "id", "name", "law", "bases", "authority") {
			continue
		}
		rn := RegionNotice{
			ID:        p.str(f["id"], path+".id"),
			Name:      p.text(f["name"], path+".name"),
			Law:       p.text(f["law"], path+".law"),
			Authority: p.text(f["authority"], path+".authority"),
			Bases:     map[string]string{},
		}
		if f["statement"] != nil {
			rn.Statement = p.text(f["statement"], path+".statement")
		}
		switch {
		case regionBit(rn.ID) == 0:
			p.fail(f["id"], path+".id", "unknown region %q (known: %s)", rn.ID, strings.Join(Regions, ", "))
			continue
		case !slices.Contains(m.Terms.Regions, rn.ID):
			p.fail(f["id"], path+".id", "region %q is not among the terms' regions", rn.ID)
			continue
		case slices.ContainsFunc(out, func(o RegionNotice) bool { return o.ID == rn.ID }):
			p.fail(f["id"], path+".id", "region %q has two notices", rn.ID)
			continue
		}
		bf := p.mapping(f["bases"], path+".bases", LegalBases...)
		for basis, v := range bf {
			rn.Bases[basis] = p.text(v, path+".bases."+basis)
		}
		for _, pu := range m.Purposes {
			if bf != nil && slices.Contains(LegalBases, pu.LegalBasis) && rn.Bases[pu.LegalBasis] == "" && bf[pu.LegalBasis] == nil {
				p.fail(f["bases"], path+".bases."+pu.LegalBasis, "missing: purpose %q rests on it", pu.ID)
			}
		}
		if rn.ID == "us-ca" && rn.Statement == "" && f["statement"] == nil {
			p.fail(e, path+".statement", "missing: California's notice must say whether personal information is sold or shared")
		}
		out = append(out, rn)
	}
	for _, r := range m.Terms.Regions {
		if regionBit(r) != 0 && !slices.ContainsFunc(out, func(o RegionNotice) bool { return o.ID == r }) && n != nil {
			p.fail(n, "region_notices", "region %q of the terms has no notice", r)
		}
	}
	return out
}

func (p *parser) rights(n *yaml.Node) Rights {
	keys := []string{"access", "erasure", "objection", "withdraw_consent"}
	f := p.mapping(n, "rights", keys...)
	if !p.require(f, n, "rights", keys...) {
		return Rights{}
	}
	right := func(key string) Right {
		path := "rights." + key
		rf := p.mapping(f[key], path, "description", "how")
		if !p.require(rf, f[key], path, "description", "how") {
			return Right{}
		}
		return Right{Description: p.text(rf["description"], path+".description"), How: p.text(rf["how"], path+".how")}
	}
	return Rights{Access: right("access"), Erasure: right("erasure"), Objection: right("objection"), WithdrawConsent: right("withdraw_consent")}
}

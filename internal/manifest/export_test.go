package manifest

// WithoutPersonalDataChecks returns a copy of m whose items search no value
// for personal data: the baseline of the benchmark pair.
func (m *Manifest) WithoutPersonalDataChecks() *Manifest {
	c := *m
	c.items = make(map[string]*Item, len(m.items))
	c.Items = make([]*Item, len(m.Items))
	for i, it := range m.Items {
		cp := *it
		cp.Type.PersonalChecks = 0
		if cp.Type.Of != nil {
			of := *cp.Type.Of
			of.PersonalChecks = 0
			cp.Type.Of = &of
		}
		c.Items[i] = &cp
		c.items[cp.ID] = &cp
	}
	c.eventTypes = make(map[string]*EventType, len(m.eventTypes))
	for id, et := range m.eventTypes {
		cp := *et
		cp.required = make([]*Item, len(et.required))
		for i, it := range et.required {
			cp.required[i] = c.items[it.ID]
		}
		c.eventTypes[id] = &cp
	}
	return &c
}

// FindPersonal exposes the pattern search to the black-box tests.
func FindPersonal(s string, checks PersonalChecks) PersonalChecks { return findPersonal(s, checks) }

package ingest

// randomUUID reports whether s, a UUID in canonical form, can have come
// from a random generator: version 4, variant 10, and not every one of its
// 122 random bits zero (the nil UUID with the version and variant set,
// which hand-made or defaulted ids produce). The manifest checks the form.
func randomUUID(s string) bool {
	if len(s) != 36 || s[14] != '4' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b':
	default:
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23, 14:
			continue
		case 19:
			if s[i] != '8' { // the two random bits of this digit
				return true
			}
			continue
		}
		if s[i] != '0' {
			return true
		}
	}
	return false
}

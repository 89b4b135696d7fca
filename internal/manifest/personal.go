package manifest

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PersonalChecks selects the patterns of personal data a text value is
// searched for. Free text that an application fills in (an error type, a
// control id) can carry what its author never meant to send: an address
// typed into a form, a path under someone's home directory. Such a value is
// refused, the event with it, and the reason says which pattern matched but
// never repeats the value.
type PersonalChecks uint8

// The patterns.
const (
	CheckEmail     PersonalChecks = 1 << iota // local@domain.tld
	CheckIPAddress                            // IPv4 dotted quad, IPv6
	CheckUserPath                             // a user's name in a path: C:\Users\NAME, /home/NAME, /Users/NAME
	CheckDigitRun                             // 10 or more digits in one run, as card and phone numbers have

	CheckAll = CheckEmail | CheckIPAddress | CheckUserPath | CheckDigitRun
)

var checkNames = []struct {
	name  string
	check PersonalChecks
}{
	{"email", CheckEmail},
	{"ip_address", CheckIPAddress},
	{"user_path", CheckUserPath},
	{"digit_run", CheckDigitRun},
}

func (c PersonalChecks) String() string {
	if c == 0 {
		return "off"
	}
	if c == CheckAll {
		return "on"
	}
	var names []string
	for _, n := range checkNames {
		if c&n.check != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ", ")
}

// Names lists the checks by name, for the disclosure.
func (c PersonalChecks) Names() []string {
	names := []string{}
	for _, n := range checkNames {
		if c&n.check != 0 {
			names = append(names, n.name)
		}
	}
	return names
}

// freeText reports whether the kind holds text that a person or a program
// may fill with anything: only those are searched. Digests, UUIDs,
// certificates, enums, numbers and times have a fixed form that a pattern
// of personal data cannot hide in.
func freeText(kind string) bool { return kind == KindString || kind == KindURL }

// personalDataCheck reads an item's personal_data_check: on (the default
// for text), off (the default for URLs), or a list of the patterns to search
// for. It sets the
// checks on the type, or on a list's elements.
func (p *parser) personalDataCheck(n *yaml.Node, path string, t *Type) {
	target := t
	if t.Kind == KindList && t.Of != nil {
		target = t.Of
	}
	if !freeText(target.Kind) {
		if n != nil {
			p.fail(n, path, "only text and URL items are searched for personal data; a %s has a fixed form", target.Kind)
		}
		return
	}
	// Text is searched unless the manifest says otherwise; an URL only when
	// asked, as an origin-only URL holds nothing but a host.
	if target.Kind == KindString {
		target.PersonalChecks = CheckAll
	}
	if n == nil {
		return
	}
	if n.Kind == yaml.SequenceNode {
		var c PersonalChecks
		for i, name := range p.list(n, path) {
			found := false
			for _, cn := range checkNames {
				if cn.name == name {
					c |= cn.check
					found = true
				}
			}
			if !found {
				p.fail(n.Content[i], fmt.Sprintf("%s[%d]", path, i), "unknown check %q (known: email, ip_address, user_path, digit_run)", name)
			}
		}
		if len(n.Content) == 0 {
			p.fail(n, path, "must name at least one check, or say off")
		}
		target.PersonalChecks = c
		return
	}
	switch p.str(n, path) {
	case "on":
		target.PersonalChecks = CheckAll
	case "off":
		target.PersonalChecks = 0
	default:
		p.fail(n, path, "must be on, off or a list of checks (email, ip_address, user_path, digit_run)")
	}
}

// findPersonal returns the first pattern of personal data in s among the
// checks, or 0. It reads s once, left to right, without allocating and in
// time linear in len(s): an inner scan starts only at a boundary (after a
// byte that cannot continue the pattern) and reads a stretch that the next
// boundary of the same kind does not read again, or at most 64 bytes, so no
// input makes it backtrack.
func findPersonal(s string, checks PersonalChecks) PersonalChecks {
	runEnd := 0 // digits before runEnd belong to a run already counted
	var prevClass uint8
	for i := 0; i < len(s); i++ {
		c := s[i]
		class := byteClasses[c]
		prev := prevClass
		prevClass = class
		if class&(clsSpecial|clsDigit|clsHexOrColon) == 0 {
			continue // most bytes: a letter that starts nothing
		}
		if class&clsSpecial != 0 {
			switch {
			case c == '@' && checks&CheckEmail != 0 && emailAt(s, i):
				return CheckEmail
			case c != '@' && checks&CheckUserPath != 0 && userPathAt(s, i):
				return CheckUserPath
			}
			continue
		}
		// An address starts after a byte that cannot be part of it; an
		// IPv4 address may follow a colon ("host:10.0.0.1"), an IPv6 one
		// may not, or every colon inside one would start another.
		if checks&CheckIPAddress != 0 && prev&clsWord == 0 {
			if class&clsDigit != 0 && ipv4At(s, i) || (i == 0 || s[i-1] != ':') && ipv6At(s, i) {
				return CheckIPAddress
			}
		}
		if checks&CheckDigitRun != 0 && class&clsDigit != 0 && i >= runEnd {
			n, end := digitRun(s, i)
			if n >= minDigitRun && !negativeNumber(s, i, n) {
				return CheckDigitRun
			}
			runEnd = end
		}
	}
	return 0
}

// Byte classes of the search, looked up once per byte.
const (
	clsSpecial    = 1 << iota // '@', '/', '\\': may start an email or a user's path
	clsDigit                  // may start an address or a run of digits
	clsHexOrColon             // a-f, A-F, ':': may start an IPv6 address
	clsWord                   // letters, digits, '_', '.': an address cannot start after one
)

var byteClasses = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case b == '@' || b == '/' || b == '\\':
			t[c] |= clsSpecial
		case isDigit(b):
			t[c] |= clsDigit | clsHexOrColon
		case isHexLetter(b) || b == ':':
			t[c] |= clsHexOrColon
		}
		if isWordByte(b) {
			t[c] |= clsWord
		}
	}
	return t
}()

// minDigitRun is the shortest run of digits taken for a card or phone
// number: national phone numbers have 10 digits, cards 13 to 19. Version
// numbers and error codes are shorter, or broken up by dots.
const minDigitRun = 10

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isHexLetter(c byte) bool { return c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isAlpha(c byte) bool     { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isWordByte(c byte) bool  { return isAlpha(c) || isDigit(c) || c == '_' || c == '.' }

// digitRun counts the digits of the run starting at i, where groups of
// digits may be joined by one or two of space, '-', '(' and ')' (as in
// "4111 1111 1111 1111" or "(415) 555-2671"), and returns the count and the
// index after the last digit.
func digitRun(s string, i int) (digits, end int) {
	end = i
	for j := i; j < len(s); {
		if isDigit(s[j]) {
			digits++
			j++
			end = j
			continue
		}
		k := j
		for k < len(s) && k-j < 2 && (s[k] == ' ' || s[k] == '-' || s[k] == '(' || s[k] == ')') {
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			break
		}
		j = k
	}
	return digits, end
}

// negativeNumber tells a signed 32-bit error code ("-2147467259", how
// Windows prints an HRESULT) from a phone number: it is one unbroken run of
// at most 10 digits after a minus sign.
func negativeNumber(s string, i, digits int) bool {
	if digits > 10 || i == 0 || s[i-1] != '-' || (i >= 2 && isDigit(s[i-2])) {
		return false
	}
	for j := i; j < i+digits; j++ {
		if !isDigit(s[j]) {
			return false
		}
	}
	return true
}

// emailAt reports whether the '@' at i joins a plausible local part and a
// domain with a dot and a top-level label of two or more letters.
func emailAt(s string, i int) bool {
	if i == 0 || !isLocalByte(s[i-1]) {
		return false
	}
	labels, lastLetters, j := 0, 0, i+1
	for j < len(s) {
		start := j
		letters := true
		for j < len(s) && (isAlpha(s[j]) || isDigit(s[j]) || s[j] == '-') {
			letters = letters && isAlpha(s[j])
			j++
		}
		if j == start {
			break
		}
		labels++
		lastLetters = 0
		if letters {
			lastLetters = j - start
		}
		if j+1 < len(s) && s[j] == '.' && (isAlpha(s[j+1]) || isDigit(s[j+1])) {
			j++
			continue
		}
		break
	}
	return labels >= 2 && lastLetters >= 2
}

func isLocalByte(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// userPathAt reports whether the separator at i starts a directory of user
// homes (Users, home, Documents and Settings) followed by a name that is not
// a shared or placeholder profile.
func userPathAt(s string, i int) bool {
	// The directory of homes sits at the root of a path: at the start, after
	// a drive ("C:") or after what cannot be part of a path name.
	if i > 0 && (isAlpha(s[i-1]) || isDigit(s[i-1]) || s[i-1] == '_' || s[i-1] == '-' || s[i-1] == '.') {
		return false
	}
	rest := s[i+1:]
	for _, dir := range [...]string{"users", "home", "documents and settings"} {
		if len(rest) <= len(dir) || !strings.EqualFold(rest[:len(dir)], dir) || (rest[len(dir)] != '/' && rest[len(dir)] != '\\') {
			continue
		}
		name := rest[len(dir)+1:]
		end := 0
		for end < len(name) && name[end] != '/' && name[end] != '\\' {
			end++
		}
		name = name[:end]
		if name == "" || name[0] == '%' || name[0] == '$' || name[0] == '<' || name[0] == '{' || name == "~" || name == "…" || name == "..." {
			return false // a placeholder, not a name
		}
		for _, shared := range [...]string{"public", "default", "default user", "all users", "shared", "guest"} {
			if strings.EqualFold(name, shared) {
				return false
			}
		}
		return true
	}
	return false
}

// ipv4At reports whether a dotted quad of decimal octets starts at i and
// stands alone: not followed by another digit, dot-and-digit or letter, as
// the parts of a longer version number are. A port (":443") may follow.
func ipv4At(s string, i int) bool {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(s) || s[j] != '.' {
				return false
			}
			j++
		}
		n, start := 0, j
		for j < len(s) && isDigit(s[j]) && j-start < 3 {
			n = n*10 + int(s[j]-'0')
			j++
		}
		if j == start || n > 255 {
			return false
		}
	}
	if j < len(s) {
		c := s[j]
		if isAlpha(c) || isDigit(c) || c == '_' || c == '.' && j+1 < len(s) && isDigit(s[j+1]) {
			return false
		}
	}
	return true
}

// ipv6At reports whether an IPv6 address starts at i: a token of hex
// digits, colons and dots, with at least two colons, that parses as one and
// does not run on into a word (so "std::bad_alloc" is not one).
func ipv6At(s string, i int) bool {
	end, colons := i, 0
	for end < len(s) && end-i < 64 {
		c := s[end]
		if c == ':' {
			colons++
		} else if !(c == '.' || isDigit(c) || isHexLetter(c)) {
			break
		}
		end++
	}
	if colons < 2 || end < len(s) && (isAlpha(s[end]) || isDigit(s[end]) || s[end] == '_') {
		return false
	}
	tok := strings.TrimRight(s[i:end], ".")
	addr, err := netip.ParseAddr(tok)
	return err == nil && addr.Is6()
}

// personalDataMessage says what was found without repeating the value.
func personalDataMessage(c PersonalChecks) string {
	switch c {
	case CheckEmail:
		return "looks like an email address; personal data may not be sent (the value is not repeated here)"
	case CheckIPAddress:
		return "looks like an IP address; personal data may not be sent (the value is not repeated here)"
	case CheckUserPath:
		return "holds a path with a user's name in it; personal data may not be sent (the value is not repeated here)"
	case CheckDigitRun:
		return "holds a long run of digits, as a card or phone number has; personal data may not be sent (the value is not repeated here)"
	}
	return "looks like personal data"
}

package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHeaderMatchesGo holds the written contract and the code together:
// every status code of provision.h has the value and name the library
// uses, the Python binding has the same values, the ABI versions agree,
// and the header declares exactly the functions the library exports. (The
// C compiler checks each exported prototype against the header when the
// library is built, since the cgo preamble includes it.)
func TestHeaderMatchesGo(t *testing.T) {
	header := readFile(t, "include/provision.h")

	codes := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^#define PROVISION_(OK|ERR_[A-Z_]+) (\d+)$`).FindAllStringSubmatch(header, -1) {
		n, _ := strconv.Atoi(m[2])
		codes[m[1]] = n
		name := strings.ToLower(strings.TrimPrefix(m[1], "ERR_"))
		if statusNames[n] != name {
			t.Errorf("provision.h: PROVISION_%s = %d; the library calls %d %q", m[1], n, n, statusNames[n])
		}
	}
	if len(codes) != len(statusNames) {
		t.Errorf("provision.h defines %d status codes, the library %d", len(codes), len(statusNames))
	}

	m := regexp.MustCompile(`(?m)^#define PROVISION_ABI_VERSION (\d+)$`).FindStringSubmatch(header)
	if m == nil || m[1] != strconv.Itoa(abiVersion) {
		t.Errorf("provision.h ABI version %v, library %d", m, abiVersion)
	}

	declared := names(regexp.MustCompile(`PROVISION_API [^;(]*?\b(provision_[a-z_]+)\(`).FindAllStringSubmatch(header, -1))
	exported := names(regexp.MustCompile(`(?m)^//export (provision_[a-z_]+)$`).FindAllStringSubmatch(readFile(t, "exports.go"), -1))
	if !slices.Equal(declared, exported) {
		t.Errorf("provision.h declares %v\nthe library exports %v", declared, exported)
	}

	python := readFile(t, "../bindings/python/provision.py")
	for code, n := range codes {
		if !regexp.MustCompile(`(?m)^` + code + ` = ` + strconv.Itoa(n) + `$`).MatchString(python) {
			t.Errorf("provision.py lacks %s = %d", code, n)
		}
	}
	bound := names(regexp.MustCompile(`"(provision_[a-z_]+)": \(`).FindAllStringSubmatch(python, -1))
	if !slices.Equal(bound, exported) {
		t.Errorf("provision.py binds %v\nthe library exports %v", bound, exported)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func names(matches [][]string) []string {
	var out []string
	for _, m := range matches {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

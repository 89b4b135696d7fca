//go:build cgo

package main

/*
#include <stdlib.h>
#include <stdint.h>
typedef const char pv_cchar;
typedef uint64_t provision_agent;
*/
import "C"

import "unsafe"

// Go test files cannot use cgo; these let the tests and benchmarks call the
// exported functions with C arguments, as a host does.

func cString(s string) *C.pv_cchar { return (*C.pv_cchar)(unsafe.Pointer(C.CString(s))) }

func freeCString(p *C.pv_cchar) { C.free(unsafe.Pointer(p)) }

func goStringOf(p *C.char) string { return C.GoString(p) }

// cAgent and cChar name C types for the test files.
type (
	cAgent = C.provision_agent
	cChar  = C.char
)

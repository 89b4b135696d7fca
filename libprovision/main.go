// Command libprovision is the Provision agent as a C library: the public
// agent package exported through the stable C interface declared in
// include/provision.h, built with
//
//	go build -buildmode=c-shared -o libprovision.so ./libprovision
//	go build -buildmode=c-archive -o libprovision.a ./libprovision
//
// Without cgo (cross-compiling with CGO_ENABLED=0) only the parts that need
// no C build, so that `go build ./...` passes on every platform; the library
// itself needs a C toolchain for its target. docs/agent.md has the
// per-language guides and the ABI stability rules.
package main

// main is required of a c-shared or c-archive package main and never runs
// in a host.
func main() {}

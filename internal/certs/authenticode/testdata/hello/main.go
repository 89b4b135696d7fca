// Command hello is the Windows program the Authenticode tests build and
// sign: a real PE image from the Go linker, small enough to sign quickly.
package main

import "fmt"

func main() {
	fmt.Println("hello from a signed image")
}

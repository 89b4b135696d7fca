// Command signme is the Windows program the agent's file-scan tests build
// and sign.
package main

func main() {}

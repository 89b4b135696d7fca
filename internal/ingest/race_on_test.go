//go:build race

package ingest_test

// raceEnabled scales the attack suite down under the race detector, which
// makes every connection several times more expensive.
const raceEnabled = true

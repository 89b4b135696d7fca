package rollup

// SetReadBatch sets how many records an update reads at once and returns
// a function that restores it.
func SetReadBatch(n int) (restore func()) {
	old := readBatch
	readBatch = n
	return func() { readBatch = old }
}

package rolluptest

import "crypto/rand"

var cryptoReader = rand.Reader

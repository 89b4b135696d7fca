package sqlite_test

import (
	"testing"

	"go.uber.org/goleak"
)

// database/sql starts a goroutine per open database; every test must close
// what it opens. glog's flush daemon comes with the differential-privacy
// library the reports use and lives for the whole process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

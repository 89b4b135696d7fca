package rollup

import "testing"

func TestMergedValues(t *testing.T) {
	k := Key{Day: "2026-11-28", View: "v", Dims: "a=1"}
	delta := NewCell(k)
	delta.Events, delta.Weight, delta.Failures = 2, 3, 1
	vals, err := MergedValues(nil, delta)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 9 || vals[0] != k.Day || vals[2] != k.Dims || vals[3] != int64(2) || vals[5] != int64(1) {
		t.Errorf("values of a new cell: %v", vals)
	}
	if d, ok := vals[8].(*int64); !ok || d == nil || *d != 0 {
		t.Errorf("distinct estimate of a cell with no installation: %v", vals[8])
	}
	stored := NewCell(k)
	stored.Events = 5
	vals, err = MergedValues(stored, delta)
	if err != nil {
		t.Fatal(err)
	}
	if vals[3] != int64(7) || vals[4] != int64(3) || stored.Events != 7 {
		t.Errorf("values of a merged cell: %v", vals)
	}
	other := NewCell(Key{Day: "2026-11-29", View: "v"})
	if _, err := MergedValues(other, delta); err == nil {
		t.Error("merge of another key: no error")
	}
}

package recorder

import (
	"slices"
	"sync"
	"testing"
)

func TestListKeepsOrderAndCopies(t *testing.T) {
	var l List[string]
	if got := l.All(); len(got) != 0 {
		t.Fatalf("zero value holds %v", got)
	}
	l.Add("a")
	l.Add("b", "c")
	got := l.All()
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("All = %v", got)
	}
	got[0] = "changed"
	if l.All()[0] != "a" {
		t.Error("All shares its backing array with the list")
	}
}

func TestListConcurrentAdds(t *testing.T) {
	var l List[int]
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				l.Add(i*100 + j)
			}
		})
	}
	wg.Wait()
	got := l.All()
	slices.Sort(got)
	if len(got) != 800 || got[0] != 0 || got[799] != 799 {
		t.Errorf("%d items, first %d, last %d; want 800 from 0 to 799", len(got), got[0], got[len(got)-1])
	}
}

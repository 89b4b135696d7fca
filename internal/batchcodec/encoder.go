package batchcodec

import "sync"

// encoder is what encode reuses from one batch to the next: its buffers,
// and the key order of the last event of each type (see sortedFields).
type encoder struct {
	raw        []byte
	compressed []byte
	pairs      []field
	orders     []keyOrder
}

// keyOrder is the sorted keys of the last event of a type.
type keyOrder struct {
	typ  string
	keys []string
}

// maxOrders bounds the event types an encoder remembers; the manifest
// declares about ten.
const maxOrders = 32

var encoders = sync.Pool{New: func() any { return &encoder{raw: make([]byte, 0, 64<<10)} }}

// order returns the key order remembered for events of type typ.
func (e *encoder) order(typ string) *keyOrder {
	for i := range e.orders {
		if e.orders[i].typ == typ {
			return &e.orders[i]
		}
	}
	if len(e.orders) >= maxOrders {
		e.orders = e.orders[:0]
	}
	e.orders = append(e.orders, keyOrder{typ: typ})
	return &e.orders[len(e.orders)-1]
}

// release returns e to the pool, unless a huge batch grew its buffers.
func (e *encoder) release() {
	if cap(e.raw) > maxPooled || cap(e.compressed) > maxPooled {
		return
	}
	clear(e.pairs[:cap(e.pairs)]) // the values belong to the caller's events
	encoders.Put(e)
}

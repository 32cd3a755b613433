// Package gcsafe keeps Go's garbage collector out of cabi_realloc. Every Go
// filter needs it (copy it into yours) until the runtime package that
// `wit-bindgen go` generates against handles this itself.
//
// Why: the host copies each batch into the plugin through cabi_realloc,
// which the component model forbids to call imports. A Go allocation there
// can start a collection, and a collection calls imports: the runtime polls
// for I/O when it restarts the world (poll_oneoff, through the preview1
// adapter) and reads the wall clock when it ends. The runtime package pauses
// only the adapter's monotonic clock around the allocation, so under load
// the plugin traps with "cannot leave component instance".
//
// The fix: automatic collection is off, and Collect, called at the end of
// each export that allocates (Process), collects when the heap has grown by
// as much as the live heap since the last collection (GOGC=100's pace), or
// by 8 MiB, whichever is more. Inside an export, imports are allowed.
package gcsafe

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// floor is the least growth between collections, so a small live heap does
// not mean a collection per batch.
const floor = 8 << 20

var (
	samples    = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	lastAllocs uint64
	budget     uint64 = floor
)

func init() {
	debug.SetGCPercent(-1)
}

// Collect runs a collection if the heap has grown by the budget since the
// last one. Call it only from inside an export.
func Collect() {
	metrics.Read(samples)
	if samples[0].Value.Uint64()-lastAllocs < budget {
		return
	}
	runtime.GC()
	metrics.Read(samples)
	lastAllocs = samples[0].Value.Uint64()
	budget = max(samples[1].Value.Uint64(), floor)
}

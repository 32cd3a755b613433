// A filter written to Fluent Bit's filter_wasm ABI in Go (GOOS=wasip1,
// //go:wasmexport, built with -buildmode=c-shared so it is a WASI reactor),
// to check that Weir runs such modules. go_filter adds "go_tag" and
// "go_time"; a record with "trap" panics and one with "drop" is dropped.
//
// The Go runtime grows memory on its own account, so the module exports
// malloc and free: the host copies tag and record into buffers Go owns, as
// Fluent Bit's runtime does when a module exports them.
package main

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// Buffers handed to the host, kept alive until it frees them.
var buffers = map[uintptr][]byte{}

// The last answer, kept alive until the next call.
var answer []byte

//go:wasmexport malloc
func malloc(size uint32) unsafe.Pointer {
	if size == 0 {
		size = 1
	}
	buf := make([]byte, size)
	ptr := unsafe.Pointer(&buf[0])
	buffers[uintptr(ptr)] = buf
	return ptr
}

//go:wasmexport free
func free(ptr unsafe.Pointer) {
	delete(buffers, uintptr(ptr))
}

func reply(bytes []byte) unsafe.Pointer {
	answer = append(append(answer[:0], bytes...), 0)
	return unsafe.Pointer(&answer[0])
}

//go:wasmexport go_filter
func goFilter(tag unsafe.Pointer, tagLen int32, timeSec uint32, timeNsec uint32, record unsafe.Pointer, recordLen int32) unsafe.Pointer {
	tagText := string(unsafe.Slice((*byte)(tag), tagLen))
	var fields map[string]any
	if err := json.Unmarshal(unsafe.Slice((*byte)(record), recordLen), &fields); err != nil {
		return reply(nil)
	}
	if _, ok := fields["trap"]; ok {
		panic("asked to trap")
	}
	if _, ok := fields["drop"]; ok {
		return nil
	}
	fields["go_tag"] = tagText
	fields["go_time"] = fmt.Sprintf("%d.%09d", timeSec, timeNsec)
	out, err := json.Marshal(fields)
	if err != nil {
		return reply(nil)
	}
	return reply(out)
}

func main() {}

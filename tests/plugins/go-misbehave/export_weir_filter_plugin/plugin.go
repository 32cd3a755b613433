// Package export_weir_filter_plugin is a Go test filter that misbehaves on
// demand, so tests can prove a bad plugin in a language other than Rust is
// contained as tests/plugins/misbehave is: its trap, endless loop or memory
// growth becomes a dead letter, and other records keep flowing. Never shipped.
//
// Config: {"mode": "trap" | "loop" | "memory_bomb"}. Every event passes
// through unchanged, with its parent, except one whose body contains the
// bytes `poison`:
//   - trap: panics with "poisoned record" (the Go runtime exits, which traps);
//   - loop: spins forever (until the host's epoch deadline);
//   - memory_bomb: allocates and touches 1 MiB blocks without bound.
package export_weir_filter_plugin

import (
	"bytes"
	"encoding/json"

	"wit_component/weir_filter_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

var mode string

func Configure(config string) witTypes.Result[witTypes.Unit, weir_filter_types.ConfigError] {
	var parsed struct {
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal([]byte(config), &parsed); err != nil {
		return witTypes.Err[witTypes.Unit](weir_filter_types.ConfigError{Field: witTypes.None[string](), Message: err.Error()})
	}
	switch parsed.Mode {
	case "trap", "loop", "memory_bomb":
		mode = parsed.Mode
		return witTypes.Ok[witTypes.Unit, weir_filter_types.ConfigError](witTypes.Unit{})
	}
	return witTypes.Err[witTypes.Unit](weir_filter_types.ConfigError{
		Field: witTypes.Some("mode"), Message: "expected trap, loop or memory_bomb",
	})
}

// Sinks keep the optimiser from deleting the loop and the allocations.
var spins uint64
var hoard [][]byte

func Process(events []weir_filter_types.Event) witTypes.Result[weir_filter_types.BatchResult, string] {
	result := weir_filter_types.BatchResult{}
	for index, event := range events {
		if bytes.Contains(event.Body, []byte("poison")) {
			switch mode {
			case "trap":
				panic("poisoned record")
			case "loop":
				for {
					spins++
				}
			case "memory_bomb":
				for {
					block := bytes.Repeat([]byte{0xA5}, 1<<20)
					hoard = append(hoard, block)
				}
			}
		}
		result.Emitted = append(result.Emitted, weir_filter_types.Emitted{Parent: witTypes.Some(uint32(index)), Event: event})
	}
	return witTypes.Ok[weir_filter_types.BatchResult, string](result)
}

func Tick(now int64) []weir_filter_types.Event { return nil }

func Snapshot() []uint8 { return nil }

func Restore(state []uint8) witTypes.Result[witTypes.Unit, string] {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

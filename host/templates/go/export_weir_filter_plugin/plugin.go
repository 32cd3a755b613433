// Package export_weir_filter_plugin is `{{name}}`, a Weir filter in Go. It
// marks every record with `"seen_by": "{{name}}"` and drops the records
// whose `level` is the configured `drop_level`; a body that is not a JSON
// object is rejected (dead-lettered with the reason).
//
// `wit-bindgen go` generates the rest of the module at build time
// (build.sh): the types, the host imports and the //go:wasmexport entry
// points that call the functions below; this package's name and
// functions are the ones those entry points call.
package export_weir_filter_plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"wit_component/gcsafe"
	"wit_component/weir_filter_host"
	"wit_component/weir_filter_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Spliced before a body's closing brace, so the rest of it is passed on
// byte for byte rather than written again.
var seenBy = []byte(`"seen_by":"{{name}}"`)

// The `config:` block, set by Configure: records whose `level` is this are
// dropped. An instance is single-threaded.
var (
	dropLevel  *string
	configured bool
)

// BadConfig is a bad `config:` block; Field names the key.
type BadConfig struct {
	Field, Message string
}

func (e *BadConfig) Error() string { return e.Field + ": " + e.Message }

// ParseConfig reads the drop level of a `config:` block (nil: none).
func ParseConfig(text string) (*string, *BadConfig) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &fields); err != nil {
		return nil, &BadConfig{Message: err.Error()}
	}
	keys := make([]string, 0, len(fields))
	for key := range fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var level *string
	for _, key := range keys {
		raw := fields[key]
		if key != "drop_level" {
			return nil, &BadConfig{Field: key, Message: "unknown key; the only key is drop_level"}
		}
		if string(raw) == "null" {
			continue
		}
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, &BadConfig{Field: key, Message: fmt.Sprintf("expected a string, found %s", raw)}
		}
		level = &text
	}
	return level, nil
}

// Mark returns body, a JSON object, with seenBy spliced in.
func Mark(body []byte) []byte {
	trimmed := bytes.TrimRight(body, " \t\r\n")
	head := trimmed[:len(trimmed)-1]
	out := make([]byte, 0, len(head)+len(seenBy)+2)
	out = append(out, head...)
	// No comma after `{`: an empty object gets the field alone.
	if !bytes.HasSuffix(bytes.TrimRight(head, " \t\r\n"), []byte("{")) {
		out = append(out, ',')
	}
	out = append(out, seenBy...)
	return append(out, '}')
}

func Configure(config string) witTypes.Result[witTypes.Unit, weir_filter_types.ConfigError] {
	level, bad := ParseConfig(config)
	if bad != nil {
		field := witTypes.None[string]()
		if bad.Field != "" {
			field = witTypes.Some(bad.Field)
		}
		return witTypes.Err[witTypes.Unit](weir_filter_types.ConfigError{Field: field, Message: bad.Message})
	}
	dropLevel, configured = level, true
	return witTypes.Ok[witTypes.Unit, weir_filter_types.ConfigError](witTypes.Unit{})
}

func Process(events []weir_filter_types.Event) witTypes.Result[weir_filter_types.BatchResult, string] {
	if !configured {
		return witTypes.Err[weir_filter_types.BatchResult]("process called before configure")
	}
	result := weir_filter_types.BatchResult{Emitted: make([]weir_filter_types.Emitted, 0, len(events))}
	var dropped uint64
	for index, event := range events {
		var fields map[string]json.RawMessage
		// `null` decodes into a nil map without an error.
		if err := json.Unmarshal(event.Body, &fields); err != nil || fields == nil {
			result.Rejected = append(result.Rejected, weir_filter_types.Rejected{Index: uint32(index), Reason: "body is not a JSON object"})
			continue
		}
		var level string
		if dropLevel != nil && json.Unmarshal(fields["level"], &level) == nil && level == *dropLevel {
			// Neither emitted nor rejected: acknowledged as consumed.
			dropped++
			continue
		}
		event.Body = Mark(event.Body)
		result.Emitted = append(result.Emitted, weir_filter_types.Emitted{Parent: witTypes.Some(uint32(index)), Event: event})
	}
	// Once per call, never per record.
	weir_filter_host.CounterAdd("dropped", dropped)
	// Collect here, where imports are allowed, never in cabi_realloc (gcsafe says why).
	gcsafe.Collect()
	return witTypes.Ok[weir_filter_types.BatchResult, string](result)
}

// Tick emits nothing: no timers.
func Tick(now int64) []weir_filter_types.Event {
	return nil
}

// Snapshot hands over nothing: no state across a reload.
func Snapshot() []uint8 {
	return nil
}

func Restore(state []uint8) witTypes.Result[witTypes.Unit, string] {
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

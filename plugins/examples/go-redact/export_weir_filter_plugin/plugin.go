// Package export_weir_filter_plugin is `redact` in Go: the WIT glue around
// package redact. `wit-bindgen go` generates the rest of the module at build
// time (build.sh): the types, the host imports and the //go:wasmexport
// entry points that call the functions below; this package's name and
// functions are the ones those entry points call.
package export_weir_filter_plugin

import (
	"wit_component/gcsafe"
	"wit_component/redact"
	"wit_component/weir_filter_host"
	"wit_component/weir_filter_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// The instance's state: set by Configure, carried by Snapshot/Restore. An
// instance is single-threaded.
var redactor *redact.Redactor

func Configure(config string) witTypes.Result[witTypes.Unit, weir_filter_types.ConfigError] {
	c, err := redact.ParseConfig(config)
	if err != nil {
		field := witTypes.None[string]()
		if err.HasField {
			field = witTypes.Some(err.Field)
		}
		return witTypes.Err[witTypes.Unit](weir_filter_types.ConfigError{Field: field, Message: err.Message})
	}
	redactor = &redact.Redactor{Config: c}
	return witTypes.Ok[witTypes.Unit, weir_filter_types.ConfigError](witTypes.Unit{})
}

func Process(events []weir_filter_types.Event) witTypes.Result[weir_filter_types.BatchResult, string] {
	if redactor == nil {
		return witTypes.Err[weir_filter_types.BatchResult]("process called before configure")
	}
	result := weir_filter_types.BatchResult{Emitted: make([]weir_filter_types.Emitted, 0, len(events))}
	var emails, cards uint64
	for index, event := range events {
		body, e, c, err := redactor.Redact(event.Body)
		if err != nil {
			result.Rejected = append(result.Rejected, weir_filter_types.Rejected{Index: uint32(index), Reason: err.Error()})
			continue
		}
		if body != nil {
			event.Body = body
			emails += e
			cards += c
		}
		result.Emitted = append(result.Emitted, weir_filter_types.Emitted{Parent: witTypes.Some(uint32(index)), Event: event})
	}
	// Once per call, never per record.
	weir_filter_host.CounterAdd("emails", emails)
	weir_filter_host.CounterAdd("cards", cards)
	// Collect here, where imports are allowed, never in cabi_realloc.
	gcsafe.Collect()
	return witTypes.Ok[weir_filter_types.BatchResult, string](result)
}

func Tick(now int64) []weir_filter_types.Event {
	return nil
}

func Snapshot() []uint8 {
	if redactor == nil {
		return nil
	}
	return redactor.Snapshot()
}

func Restore(state []uint8) witTypes.Result[witTypes.Unit, string] {
	if redactor == nil {
		return witTypes.Err[witTypes.Unit]("restore called before configure")
	}
	if err := redactor.Restore(state); err != nil {
		return witTypes.Err[witTypes.Unit](err.Error())
	}
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

package redact

import (
	"bytes"
	"os"
	"testing"
)

func run(t *testing.T, config string) []byte {
	t.Helper()
	c, cerr := ParseConfig(config)
	if cerr != nil {
		t.Fatalf("config %s: %s", config, cerr.Message)
	}
	r := &Redactor{Config: c}
	input, err := os.ReadFile("../../testdata/input.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSuffix(input, []byte("\n")), []byte("\n")) {
		body, _, _, err := r.Redact(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if body == nil {
			body = line
		}
		out.Write(body)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func expect(t *testing.T, got []byte, file string) {
	t.Helper()
	want, err := os.ReadFile("../../testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n%s", file, got)
	}
}

func TestTheSharedInputGivesTheExpectedOutputWithTheDefaultConfig(t *testing.T) {
	expect(t, run(t, "{}"), "expected-default.ndjson")
}

func TestTheSharedInputGivesTheExpectedOutputWithTheCustomConfig(t *testing.T) {
	config, err := os.ReadFile("../../testdata/custom.json")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, run(t, string(config)), "expected-custom.ndjson")
}

func TestABadConfigNamesTheKey(t *testing.T) {
	for text, field := range map[string]string{
		`{"bogus":1}`: "bogus", `{"mask":3}`: "mask", `{"cards":"yes"}`: "cards",
		`{"email_pattern":"("}`: "email_pattern", `{"total_field":"message"}`: "total_field", `[]`: "",
	} {
		_, err := ParseConfig(text)
		if err == nil || err.Field != field || err.HasField != (field != "") {
			t.Errorf("%s: got %+v, want field %q", text, err, field)
		}
	}
}

func TestSnapshotAndRestoreCarryTheRunningTotal(t *testing.T) {
	c, _ := ParseConfig(`{"total_field":"n"}`)
	a := &Redactor{Config: c}
	a.Redact([]byte(`{"message":"a@example.com b@example.com"}`))
	b := &Redactor{Config: c}
	if err := b.Restore(a.Snapshot()); err != nil {
		t.Fatal(err)
	}
	body, _, _, _ := b.Redact([]byte(`{"message":"c@example.com"}`))
	if string(body) != `{"message":"[REDACTED]","n":3}` {
		t.Errorf("got %s", body)
	}
	if b.Restore([]byte("x")) == nil {
		t.Error("restore accepted x")
	}
}

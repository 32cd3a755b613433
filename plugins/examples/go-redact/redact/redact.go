// Package redact is the `redact` example's logic: it masks e-mail addresses
// and payment card numbers in one string member of each record's JSON body.
//
// docs/plugins.md ("The redact filter") specifies the behaviour; every
// language's example implements it byte for byte. The package imports
// nothing from the WIT bindings, so `go test` runs it natively.
package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	DefaultField        = "message"
	DefaultMask         = "[REDACTED]"
	DefaultEmailPattern = `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`

	// A card is 13 to 19 digits that pass the Luhn check.
	cardMinDigits = 13
	cardMaxDigits = 19
)

// ConfigError is a bad `config:` block: Field names the key ("" with
// HasField false: the whole block).
type ConfigError struct {
	Field    string
	HasField bool
	Message  string
}

func (e *ConfigError) Error() string { return e.Message }

func keyError(key, message string) *ConfigError {
	return &ConfigError{Field: key, HasField: true, Message: message}
}

// ErrNotAnObject: the body's top level is not a JSON object this filter can scan.
var ErrNotAnObject = errors.New("body is not a json object")

// Config is the validated `config:` block.
type Config struct {
	Field string
	Mask  string
	// Email is nil when `emails` is false.
	Email *regexp.Regexp
	// EmailNeedsAt: the pattern matches nothing without an `@` (the default
	// does), so text without one skips the regex.
	EmailNeedsAt bool
	Cards        bool
	TotalField   string // "" when not set
}

var knownKeys = map[string]bool{
	"field": true, "mask": true, "email_pattern": true, "emails": true, "cards": true, "total_field": true,
}

// ParseConfig validates the JSON text of the `config:` block.
func ParseConfig(text string) (*Config, *ConfigError) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil || raw == nil {
		return nil, &ConfigError{Message: "config is not a json object"}
	}
	for key := range raw {
		if !knownKeys[key] {
			return nil, keyError(key, "unknown key")
		}
	}
	str := func(key, fallback string) (string, *ConfigError) {
		value, ok := raw[key]
		if !ok {
			return fallback, nil
		}
		var s string
		if value[0] != '"' || json.Unmarshal(value, &s) != nil {
			return "", keyError(key, "expected a string")
		}
		return s, nil
	}
	boolean := func(key string) (bool, *ConfigError) {
		switch string(raw[key]) {
		case "", "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, keyError(key, "expected true or false")
	}
	field, err := str("field", DefaultField)
	if err != nil {
		return nil, err
	}
	if field == "" {
		return nil, keyError("field", "must not be empty")
	}
	mask, err := str("mask", DefaultMask)
	if err != nil {
		return nil, err
	}
	pattern, err := str("email_pattern", DefaultEmailPattern)
	if err != nil {
		return nil, err
	}
	if pattern == "" {
		return nil, keyError("email_pattern", "must not be empty")
	}
	email, compileErr := regexp.Compile(pattern)
	if compileErr != nil {
		return nil, keyError("email_pattern", "invalid regular expression: "+compileErr.Error())
	}
	emails, err := boolean("emails")
	if err != nil {
		return nil, err
	}
	cards, err := boolean("cards")
	if err != nil {
		return nil, err
	}
	if !emails {
		email = nil
	}
	totalField := ""
	if value, ok := raw["total_field"]; ok && string(value) != "null" {
		if value[0] != '"' || json.Unmarshal(value, &totalField) != nil {
			return nil, keyError("total_field", "expected a string or null")
		}
		switch {
		case totalField == "":
			return nil, keyError("total_field", "must not be empty")
		case strings.ContainsFunc(totalField, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }):
			return nil, keyError("total_field", "must not contain quotes, backslashes or control characters")
		case totalField == field:
			return nil, keyError("total_field", "must differ from field")
		}
	}
	return &Config{
		Field: field, Mask: mask, Email: email, EmailNeedsAt: pattern == DefaultEmailPattern, Cards: cards, TotalField: totalField,
	}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// luhn reports whether a string of ASCII digits passes the Luhn check.
func luhn(digits []byte) bool {
	total := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		total += d
	}
	return total%10 == 0
}

// maskCards returns text with each card masked, and how many.
func maskCards(text, mask string) (string, uint64) {
	var out strings.Builder
	var count uint64
	last := 0
	var spans [][2]int // the current run's digit groups
	var digits [cardMaxDigits]byte
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		spans = spans[:0]
		for {
			start := i
			for i < len(text) && isDigit(text[i]) {
				i++
			}
			spans = append(spans, [2]int{start, i})
			if i+1 < len(text) && (text[i] == ' ' || text[i] == '-') && isDigit(text[i+1]) {
				i++
			} else {
				break
			}
		}
		for a := 0; a < len(spans); {
			best, n := -1, 0
			for b := a; b < len(spans); b++ {
				group := text[spans[b][0]:spans[b][1]]
				if n+len(group) > cardMaxDigits {
					break
				}
				n += copy(digits[n:], group)
				if n >= cardMinDigits && luhn(digits[:n]) {
					best = b
				}
			}
			if best < 0 {
				a++
				continue
			}
			out.WriteString(text[last:spans[a][0]])
			out.WriteString(mask)
			last = spans[best][1]
			count++
			a = best + 1
		}
	}
	if count == 0 {
		return text, 0
	}
	out.WriteString(text[last:])
	return out.String(), count
}

// RedactText returns text with e-mails, then cards, masked, and how many of each.
func RedactText(text string, c *Config) (string, uint64, uint64) {
	var emails, cards uint64
	if c.Email != nil && (!c.EmailNeedsAt || strings.IndexByte(text, '@') >= 0) {
		var out strings.Builder
		last := 0
		for _, m := range c.Email.FindAllStringIndex(text, -1) {
			if m[0] == m[1] {
				continue
			}
			out.WriteString(text[last:m[0]])
			out.WriteString(c.Mask)
			last = m[1]
			emails++
		}
		if emails > 0 {
			out.WriteString(text[last:])
			text = out.String()
		}
	}
	if c.Cards {
		text, cards = maskCards(text, c.Mask)
	}
	return text, emails, cards
}

// ---- JSON scanning: each returns the end (exclusive) or -1 when malformed.

func skipWS(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
		i++
	}
	return i
}

func stringEnd(s []byte, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

func valueEnd(s []byte, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			c := s[i]
			if c == '"' {
				if i = stringEnd(s, i); i < 0 {
					return -1
				}
				continue
			}
			i++
			switch c {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i
				}
			}
		}
		return -1
	}
	start := i
	for i < len(s) && !strings.ContainsRune(" \t\r\n,}]", rune(s[i])) {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[:4]), 16, 32)
	return rune(v), err == nil
}

// decodeString returns the text of the JSON string literal s (quotes
// included); lone surrogate escapes become U+FFFD.
func decodeString(s []byte) (string, bool) {
	body := s[1 : len(s)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(body) {
			return "", false
		}
		e := body[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(body[i:])
			if !ok {
				return "", false
			}
			i += 4
			if r >= 0xD800 && r <= 0xDBFF && i+1 < len(body) && body[i] == '\\' && body[i+1] == 'u' {
				if low, ok := hex4(body[i+2:]); ok && low >= 0xDC00 && low <= 0xDFFF {
					r = 0x10000 + (r-0xD800)<<10 + (low - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r <= 0xDFFF {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

// appendString appends the canonical JSON string literal of text (docs/plugins.md).
func appendString(out []byte, text string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	plain := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, text[plain:i]...)
		plain = i + 1
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
	}
	out = append(out, text[plain:]...)
	return append(out, '"')
}

// findMember returns the span of the value of the first top-level member
// of body named name; found is false when there is none.
func findMember(body []byte, name string) (start, end int, found bool, err error) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return 0, 0, false, ErrNotAnObject
	}
	if i = skipWS(body, i+1); i < len(body) && body[i] == '}' {
		return 0, 0, false, nil
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return 0, 0, false, ErrNotAnObject
		}
		keyEnd := stringEnd(body, i)
		if keyEnd < 0 {
			return 0, 0, false, ErrNotAnObject
		}
		key, ok := decodeString(body[i:keyEnd])
		if !ok {
			return 0, 0, false, ErrNotAnObject
		}
		if i = skipWS(body, keyEnd); i >= len(body) || body[i] != ':' {
			return 0, 0, false, ErrNotAnObject
		}
		start = skipWS(body, i+1)
		if end = valueEnd(body, start); end < 0 {
			return 0, 0, false, ErrNotAnObject
		}
		if key == name {
			return start, end, true, nil
		}
		i = skipWS(body, end)
		if i < len(body) && body[i] == '}' {
			return 0, 0, false, nil
		}
		if i >= len(body) || body[i] != ',' {
			return 0, 0, false, ErrNotAnObject
		}
		i = skipWS(body, i+1)
	}
}

// hasCardRun reports whether s holds 13 digits in one run, where a card could be.
func hasCardRun(s []byte) bool {
	digits := 0
	for i, c := range s {
		switch {
		case isDigit(c):
			if digits++; digits >= cardMinDigits {
				return true
			}
		case (c == ' ' || c == '-') && i > 0 && isDigit(s[i-1]) && i+1 < len(s) && isDigit(s[i+1]):
		default:
			digits = 0
		}
	}
	return false
}

// mightMask is false when nothing in body can be masked, judged on its raw
// bytes: most records have no `@`, no long digit run and no escape (through
// which either could hide).
func (c *Config) mightMask(body []byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return true
	}
	if c.Email != nil && (!c.EmailNeedsAt || bytes.IndexByte(body, '@') >= 0) {
		return true
	}
	return c.Cards && hasCardRun(body)
}

// Redactor is one filter instance: its config and the running total of masks.
type Redactor struct {
	Config *Config
	Total  uint64
}

// Redact returns the new body (nil when unchanged) and how many e-mails and
// cards it masked, or ErrNotAnObject.
func (r *Redactor) Redact(body []byte) ([]byte, uint64, uint64, error) {
	if !r.Config.mightMask(body) {
		return nil, 0, 0, nil
	}
	start, end, found, err := findMember(body, r.Config.Field)
	if err != nil {
		return nil, 0, 0, err
	}
	if !found || body[start] != '"' {
		return nil, 0, 0, nil
	}
	text, ok := decodeString(body[start:end])
	if !ok {
		return nil, 0, 0, ErrNotAnObject
	}
	text, emails, cards := RedactText(text, r.Config)
	if emails+cards == 0 {
		return nil, 0, 0, nil
	}
	out := make([]byte, 0, len(body)+len(text)+32)
	out = append(out, body[:start]...)
	out = appendString(out, text)
	out = append(out, body[end:]...)
	r.Total += emails + cards
	if r.Config.TotalField != "" {
		close := bytes.LastIndexByte(out, '}')
		tail := append([]byte(nil), out[close:]...)
		out = append(out[:close], fmt.Sprintf(`,"%s":%d`, r.Config.TotalField, r.Total)...)
		out = append(out, tail...)
	}
	return out, emails, cards, nil
}

// Snapshot returns the running total as decimal text.
func (r *Redactor) Snapshot() []byte { return strconv.AppendUint(nil, r.Total, 10) }

// Restore takes over a total from Snapshot; empty state means zero.
func (r *Redactor) Restore(state []byte) error {
	if len(state) == 0 {
		return nil
	}
	total, err := strconv.ParseUint(string(state), 10, 64)
	if err != nil {
		return errors.New("state is not a decimal count of masks")
	}
	r.Total = total
	return nil
}

// The `redact` example's logic (see redact.h). JSON is scanned, not parsed:
// only the top level of the body is walked, to find the member to redact,
// and the new value is spliced into the original bytes.
#include "redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_FIELD "message"
#define DEFAULT_MASK "[REDACTED]"
#define DEFAULT_EMAIL_PATTERN "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}"

// A card is 13 to 19 digits that pass the Luhn check.
#define CARD_MIN_DIGITS 13
#define CARD_MAX_DIGITS 19

void redact_buf_push(redact_buf *buf, const void *bytes, size_t len) {
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap ? buf->cap * 2 : 256;
        while (cap < buf->len + len) cap *= 2;
        buf->ptr = realloc(buf->ptr, cap);
        if (!buf->ptr) abort();
        buf->cap = cap;
    }
    if (len) memcpy(buf->ptr + buf->len, bytes, len);
    buf->len += len;
}

static void push_byte(redact_buf *buf, uint8_t byte) { redact_buf_push(buf, &byte, 1); }

void redact_buf_free(redact_buf *buf) {
    free(buf->ptr);
    *buf = (redact_buf){0};
}

// ---- JSON scanning. Each returns the end (exclusive) or SIZE_MAX on malformed input.

#define BAD SIZE_MAX

static size_t skip_ws(const uint8_t *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

static size_t string_end(const uint8_t *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return BAD;
}

static size_t value_end(const uint8_t *s, size_t n, size_t i) {
    if (i >= n) return BAD;
    if (s[i] == '"') return string_end(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            uint8_t c = s[i];
            if (c == '"') {
                i = string_end(s, n, i);
                if (i == BAD) return BAD;
                continue;
            }
            i++;
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return i;
            }
        }
        return BAD;
    }
    size_t start = i;
    while (i < n && !strchr(" \t\r\n,}]", s[i])) i++;
    return i == start ? BAD : i;
}

static void push_utf8(redact_buf *out, uint32_t cp) {
    uint8_t b[4];
    size_t len;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        len = 1;
    } else if (cp < 0x800) {
        b[0] = 0xC0 | (cp >> 6);
        b[1] = 0x80 | (cp & 0x3F);
        len = 2;
    } else if (cp < 0x10000) {
        b[0] = 0xE0 | (cp >> 12);
        b[1] = 0x80 | ((cp >> 6) & 0x3F);
        b[2] = 0x80 | (cp & 0x3F);
        len = 3;
    } else {
        b[0] = 0xF0 | (cp >> 18);
        b[1] = 0x80 | ((cp >> 12) & 0x3F);
        b[2] = 0x80 | ((cp >> 6) & 0x3F);
        b[3] = 0x80 | (cp & 0x3F);
        len = 4;
    }
    redact_buf_push(out, b, len);
}

static int hex4(const uint8_t *s, size_t n, size_t i) {
    if (i + 4 > n) return -1;
    int v = 0;
    for (size_t k = i; k < i + 4; k++) {
        int c = s[k], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

// Appends the text of the JSON string literal s[0..n) (quotes included) to
// `out`; lone surrogate escapes become U+FFFD. False if malformed.
static bool decode_string(const uint8_t *s, size_t n, redact_buf *out) {
    size_t i = 1, end = n - 1;
    while (i < end) {
        size_t plain = i;
        while (i < end && s[i] != '\\') i++;
        redact_buf_push(out, s + plain, i - plain);
        if (i >= end) break;
        if (i + 1 >= end) return false;
        uint8_t e = s[i + 1];
        i += 2;
        switch (e) {
            case '"': push_byte(out, '"'); break;
            case '\\': push_byte(out, '\\'); break;
            case '/': push_byte(out, '/'); break;
            case 'b': push_byte(out, '\b'); break;
            case 'f': push_byte(out, '\f'); break;
            case 'n': push_byte(out, '\n'); break;
            case 'r': push_byte(out, '\r'); break;
            case 't': push_byte(out, '\t'); break;
            case 'u': {
                int cp = hex4(s, end, i);
                if (cp < 0) return false;
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < end && s[i] == '\\' && s[i + 1] == 'u') {
                    int low = hex4(s, end, i + 2);
                    if (low >= 0xDC00 && low <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                push_utf8(out, (uint32_t)cp);
                break;
            }
            default: return false;
        }
    }
    return true;
}

// Appends the canonical JSON string literal of text[0..n) (docs/plugins.md).
static void encode_string(const uint8_t *text, size_t n, redact_buf *out) {
    static const char hex[] = "0123456789abcdef";
    push_byte(out, '"');
    size_t plain = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = text[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        redact_buf_push(out, text + plain, i - plain);
        plain = i + 1;
        char esc[6] = {'\\', 0};
        size_t len = 2;
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                len = 6;
        }
        redact_buf_push(out, esc, len);
    }
    redact_buf_push(out, text + plain, n - plain);
    push_byte(out, '"');
}

// Whether the JSON string literal s[0..n) decodes to name[0..name_len).
static bool key_equals(const uint8_t *s, size_t n, const char *name, size_t name_len) {
    if (!memchr(s, '\\', n)) return n - 2 == name_len && memcmp(s + 1, name, name_len) == 0;
    redact_buf key = {0};
    bool ok = decode_string(s, n, &key) && key.len == name_len && memcmp(key.ptr, name, name_len) == 0;
    redact_buf_free(&key);
    return ok;
}

// Calls visit(key literal, value span) for each top-level member of the
// object s[0..n) until it returns true. Returns 1 if stopped, 0 at the end
// of the object, -1 when the top level is not an object.
typedef bool (*member_fn)(void *ctx, const uint8_t *s, size_t key, size_t key_end, size_t start, size_t end);

static int each_member(const uint8_t *s, size_t n, member_fn visit, void *ctx) {
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return 0;
    for (;;) {
        if (i >= n || s[i] != '"') return -1;
        size_t key_end = string_end(s, n, i);
        if (key_end == BAD) return -1;
        size_t colon = skip_ws(s, n, key_end);
        if (colon >= n || s[colon] != ':') return -1;
        size_t start = skip_ws(s, n, colon + 1);
        size_t end = value_end(s, n, start);
        if (end == BAD) return -1;
        if (visit(ctx, s, i, key_end, start, end)) return 1;
        i = skip_ws(s, n, end);
        if (i < n && s[i] == '}') return 0;
        if (i >= n || s[i] != ',') return -1;
        i = skip_ws(s, n, i + 1);
    }
}

// ---- Config.

static const char *const KEYS[] = {"field", "mask", "email_pattern", "emails", "cards", "total_field"};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

typedef struct {
    size_t start[NKEYS], end[NKEYS];  // value spans; start == BAD when absent
    char *unknown;                    // the first unknown key
} config_scan;

static char *decode_cstr(const uint8_t *s, size_t n) {
    redact_buf text = {0};
    if (!decode_string(s, n, &text)) {
        redact_buf_free(&text);
        return NULL;
    }
    push_byte(&text, 0);
    return (char *)text.ptr;
}

static bool visit_config(void *ctx, const uint8_t *s, size_t key, size_t key_end, size_t start, size_t end) {
    config_scan *scan = ctx;
    for (size_t k = 0; k < NKEYS; k++) {
        if (key_equals(s + key, key_end - key, KEYS[k], strlen(KEYS[k]))) {
            scan->start[k] = start;
            scan->end[k] = end;
            return false;
        }
    }
    if (!scan->unknown) scan->unknown = decode_cstr(s + key, key_end - key);
    return false;
}

static bool fail(redact_config_error *error, const char *field, const char *message) {
    error->field = field ? strdup(field) : NULL;
    snprintf(error->message, sizeof error->message, "%s", message);
    return false;
}

// The string value of key k (its default when absent), or NULL with `error` set.
static char *config_string(const uint8_t *json, const config_scan *scan, size_t k, const char *fallback,
                           redact_config_error *error) {
    if (scan->start[k] == BAD) return strdup(fallback);
    if (json[scan->start[k]] != '"') {
        fail(error, KEYS[k], "expected a string");
        return NULL;
    }
    char *value = decode_cstr(json + scan->start[k], scan->end[k] - scan->start[k]);
    if (!value) fail(error, KEYS[k], "expected a string");
    return value;
}

static bool config_bool(const uint8_t *json, const config_scan *scan, size_t k, bool *out,
                        redact_config_error *error) {
    *out = true;
    if (scan->start[k] == BAD) return true;
    size_t len = scan->end[k] - scan->start[k];
    const uint8_t *v = json + scan->start[k];
    if (len == 4 && memcmp(v, "true", 4) == 0) return true;
    if (len == 5 && memcmp(v, "false", 5) == 0) {
        *out = false;
        return true;
    }
    return fail(error, KEYS[k], "expected true or false");
}

bool redact_parse_config(const uint8_t *json, size_t len, redact_config *config, redact_config_error *error) {
    *config = (redact_config){0};
    *error = (redact_config_error){0};
    config_scan scan = {.unknown = NULL};
    for (size_t k = 0; k < NKEYS; k++) scan.start[k] = BAD;
    if (each_member(json, len, visit_config, &scan) < 0) {
        free(scan.unknown);
        return fail(error, NULL, "config is not a json object");
    }
    if (scan.unknown) {
        error->field = scan.unknown;
        snprintf(error->message, sizeof error->message, "unknown key");
        return false;
    }
    char *pattern = NULL;
    bool ok = false;
    if (!(config->field = config_string(json, &scan, 0, DEFAULT_FIELD, error))) goto out;
    if (!*config->field) {
        fail(error, "field", "must not be empty");
        goto out;
    }
    config->field_len = strlen(config->field);
    if (!(config->mask = config_string(json, &scan, 1, DEFAULT_MASK, error))) goto out;
    config->mask_len = strlen(config->mask);
    if (!(pattern = config_string(json, &scan, 2, DEFAULT_EMAIL_PATTERN, error))) goto out;
    if (!*pattern) {
        fail(error, "email_pattern", "must not be empty");
        goto out;
    }
    int rc = regcomp(&config->email, pattern, REG_EXTENDED);
    if (rc != 0) {
        char detail[150];
        regerror(rc, &config->email, detail, sizeof detail);
        error->field = strdup("email_pattern");
        snprintf(error->message, sizeof error->message, "invalid regular expression: %s", detail);
        goto out;
    }
    if (!config_bool(json, &scan, 3, &config->emails, error) || !config_bool(json, &scan, 4, &config->cards, error)) {
        regfree(&config->email);
        goto out;
    }
    if (!config->emails) regfree(&config->email);
    config->email_needs_at = strcmp(pattern, DEFAULT_EMAIL_PATTERN) == 0;
    size_t start = scan.start[5];
    if (start != BAD && !(scan.end[5] - start == 4 && memcmp(json + start, "null", 4) == 0)) {
        const char *problem = NULL;
        if (json[start] != '"' || !(config->total_field = decode_cstr(json + start, scan.end[5] - start))) {
            problem = "expected a string or null";
        } else if (!*config->total_field) {
            problem = "must not be empty";
        } else {
            for (const char *c = config->total_field; *c; c++) {
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
                    problem = "must not contain quotes, backslashes or control characters";
                }
            }
            if (!problem && strcmp(config->total_field, config->field) == 0) problem = "must differ from field";
        }
        if (problem) {
            if (config->emails) regfree(&config->email);
            fail(error, "total_field", problem);
            goto out;
        }
    }
    ok = true;
out:
    free(pattern);
    if (!ok) {
        free(config->field);
        free(config->mask);
        free(config->total_field);
        *config = (redact_config){0};
    }
    return ok;
}

void redact_config_free(redact_config *config) {
    if (config->emails) regfree(&config->email);
    free(config->field);
    free(config->mask);
    free(config->total_field);
    *config = (redact_config){0};
}

// ---- Redaction.

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static bool luhn(const char *digits, size_t n) {
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        total += d;
    }
    return total % 10 == 0;
}

// Appends text[0..n) with each card masked; returns how many.
static uint64_t mask_cards(const uint8_t *text, size_t n, const redact_config *config, redact_buf *out) {
    uint64_t count = 0;
    size_t last = 0, i = 0;
    // Spans of the current run's digit groups: (start, end) pairs.
    size_t *spans = NULL, cap = 0;
    while (i < n) {
        if (!is_digit(text[i])) {
            i++;
            continue;
        }
        size_t groups = 0;
        for (;;) {
            if (2 * groups + 2 > cap) {
                cap = cap ? 2 * cap : 16;
                spans = realloc(spans, cap * sizeof *spans);
                if (!spans) abort();
            }
            spans[2 * groups] = i;
            while (i < n && is_digit(text[i])) i++;
            spans[2 * groups + 1] = i;
            groups++;
            if (i + 1 < n && (text[i] == ' ' || text[i] == '-') && is_digit(text[i + 1])) i++;
            else break;
        }
        for (size_t a = 0; a < groups;) {
            char digits[CARD_MAX_DIGITS];
            size_t count_digits = 0, best = SIZE_MAX;
            for (size_t b = a; b < groups; b++) {
                size_t len = spans[2 * b + 1] - spans[2 * b];
                if (count_digits + len > CARD_MAX_DIGITS) break;
                memcpy(digits + count_digits, text + spans[2 * b], len);
                count_digits += len;
                if (count_digits >= CARD_MIN_DIGITS && luhn(digits, count_digits)) best = b;
            }
            if (best == SIZE_MAX) {
                a++;
                continue;
            }
            redact_buf_push(out, text + last, spans[2 * a] - last);
            redact_buf_push(out, config->mask, config->mask_len);
            last = spans[2 * best + 1];
            count++;
            a = best + 1;
        }
    }
    free(spans);
    redact_buf_push(out, text + last, n - last);
    return count;
}

// Appends text[0..n) (NUL-terminated at n) with each e-mail masked; returns
// how many. POSIX regexec stops at NUL, so each NUL-free segment is searched.
static uint64_t mask_emails(const uint8_t *text, size_t n, const redact_config *config, redact_buf *out) {
    uint64_t count = 0;
    size_t i = 0;
    int flags = 0;
    while (i < n) {
        regmatch_t m;
        if (text[i] == 0 || regexec(&config->email, (const char *)text + i, 1, &m, flags) != 0) {
            // No (more) match in this segment: copy it and its NUL.
            size_t seg = i + strlen((const char *)text + i);
            size_t stop = seg < n ? seg + 1 : n;
            redact_buf_push(out, text + i, stop - i);
            i = stop;
            flags = REG_NOTBOL;
            continue;
        }
        flags = REG_NOTBOL;
        redact_buf_push(out, text + i, (size_t)m.rm_so);
        if (m.rm_eo == m.rm_so) {
            // An empty match masks nothing: step over one UTF-8 character.
            size_t at = i + (size_t)m.rm_so, next = at + 1;
            while (next < n && (text[next] & 0xC0) == 0x80) next++;
            redact_buf_push(out, text + at, next - at);
            i = next;
            continue;
        }
        redact_buf_push(out, config->mask, config->mask_len);
        i += (size_t)m.rm_eo;
        count++;
    }
    return count;
}

// Whether s[0..n) holds 13 digits in one run, where a card could be.
static bool has_card_run(const uint8_t *s, size_t n) {
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_digit(s[i])) {
            if (++digits >= CARD_MIN_DIGITS) return true;
        } else if (!((s[i] == ' ' || s[i] == '-') && i > 0 && is_digit(s[i - 1]) && i + 1 < n && is_digit(s[i + 1]))) {
            digits = 0;
        }
    }
    return false;
}

// False when nothing in the body can be masked, judged on its raw bytes:
// most records have no `@`, no long digit run and no escape (through which
// either could hide).
static bool might_mask(const redact_config *config, const uint8_t *body, size_t len) {
    if (memchr(body, '\\', len)) return true;
    if (config->emails && (!config->email_needs_at || memchr(body, '@', len))) return true;
    return config->cards && has_card_run(body, len);
}

typedef struct {
    const redact_config *config;
    size_t start, end;
    bool found;
} find_field;

static bool visit_field(void *ctx, const uint8_t *s, size_t key, size_t key_end, size_t start, size_t end) {
    find_field *find = ctx;
    if (!key_equals(s + key, key_end - key, find->config->field, find->config->field_len)) return false;
    find->start = start;
    find->end = end;
    find->found = true;
    return true;
}

redact_outcome redact_body(redactor *r, const uint8_t *body, size_t len, redact_buf *out, uint64_t *emails,
                           uint64_t *cards) {
    const redact_config *config = &r->config;
    *emails = *cards = 0;
    if (!might_mask(config, body, len)) return REDACT_UNCHANGED;
    find_field find = {.config = config};
    if (each_member(body, len, visit_field, &find) < 0) return REDACT_NOT_AN_OBJECT;
    if (!find.found || body[find.start] != '"') return REDACT_UNCHANGED;

    redact_buf text = {0}, masked = {0};
    if (!decode_string(body + find.start, find.end - find.start, &text)) {
        redact_buf_free(&text);
        return REDACT_NOT_AN_OBJECT;
    }
    size_t text_len = text.len;
    push_byte(&text, 0);
    if (config->emails && (!config->email_needs_at || memchr(text.ptr, '@', text_len))) {
        *emails = mask_emails(text.ptr, text_len, config, &masked);
        redact_buf swap = text;
        text = masked;
        masked = swap;
        text_len = text.len;
        masked.len = 0;
    }
    if (config->cards) {
        *cards = mask_cards(text.ptr, text_len, config, &masked);
        redact_buf swap = text;
        text = masked;
        masked = swap;
        text_len = text.len;
    }
    redact_buf_free(&masked);
    if (*emails + *cards == 0) {
        redact_buf_free(&text);
        return REDACT_UNCHANGED;
    }
    out->len = 0;
    redact_buf_push(out, body, find.start);
    encode_string(text.ptr, text_len, out);
    redact_buf_free(&text);
    redact_buf_push(out, body + find.end, len - find.end);
    r->total += *emails + *cards;
    if (config->total_field) {
        size_t close = out->len;
        while (close > 0 && out->ptr[close - 1] != '}') close--;
        char member[64];
        size_t name_len = strlen(config->total_field);
        int n = snprintf(member, sizeof member, "\":%llu}", (unsigned long long)r->total);
        redact_buf tail = {0};
        redact_buf_push(&tail, out->ptr + close, out->len - close);
        out->len = close - 1;
        redact_buf_push(out, ",\"", 2);
        redact_buf_push(out, config->total_field, name_len);
        redact_buf_push(out, member, (size_t)n);
        redact_buf_push(out, tail.ptr, tail.len);
        redact_buf_free(&tail);
    }
    return REDACT_CHANGED;
}

void redact_snapshot(const redactor *r, redact_buf *out) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)r->total);
    redact_buf_push(out, digits, (size_t)n);
}

bool redact_restore(redactor *r, const uint8_t *state, size_t len) {
    uint64_t total = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(state[i])) return false;
        total = total * 10 + (state[i] - '0');
    }
    r->total = total;
    return true;
}

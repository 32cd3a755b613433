// `{{name}}`: a Weir filter in C. It marks every record with
// `"seen_by": "{{name}}"`, spliced before the body's closing brace, and
// rejects (dead-letters, with the reason) a body that is not a JSON
// object. It takes no config: anything but `{}` is refused.
//
// `wit-bindgen c` generates filter.h and filter.c from wit/filter.wit at
// build time (build.sh). Ownership follows the generated bindings: an
// export owns its arguments (frees or moves them), and what it returns is
// freed by the bindings after the call.
#include <stdlib.h>
#include <string.h>

#include "filter.h"

static const char FIELD[] = ",\"seen_by\":\"{{name}}\"";

static bool configured;

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The index of the first byte in [i, end) that is not white space, or `end`.
static size_t skip_space(const uint8_t *bytes, size_t i, size_t end) {
    while (i < end && is_space(bytes[i])) i++;
    return i;
}

// The index of the last byte of bytes[0, n) that is not white space, or `n`.
static size_t last_non_space(const uint8_t *bytes, size_t n) {
    for (size_t i = n; i > 0; i--) {
        if (!is_space(bytes[i - 1])) return i - 1;
    }
    return n;
}

bool exports_weir_filter_plugin_configure(filter_string_t *config, exports_weir_filter_plugin_config_error_t *err) {
    const uint8_t *text = config->ptr;
    size_t n = config->len;
    size_t open = skip_space(text, 0, n);
    size_t close = open < n ? skip_space(text, open + 1, n) : n;
    bool empty = close < n && text[open] == '{' && text[close] == '}' && skip_space(text, close + 1, n) == n;
    filter_string_free(config);
    if (!empty) {
        err->field.is_some = false;
        filter_string_dup(&err->message, "this filter takes no config");
        return false;
    }
    configured = true;
    return true;
}

// The body with FIELD spliced before its closing brace, or false when it
// is not a JSON object (checked only by its first and last bytes).
static bool mark(const filter_list_u8_t *body, filter_list_u8_t *out) {
    size_t n = body->len;
    size_t first = skip_space(body->ptr, 0, n);
    size_t last = last_non_space(body->ptr, n);
    if (first >= n || last <= first || body->ptr[first] != '{' || body->ptr[last] != '}') return false;
    // No comma after `{`: an empty object gets the field alone.
    bool empty = skip_space(body->ptr, first + 1, last) == last;
    const char *field = empty ? FIELD + 1 : FIELD;
    size_t field_len = strlen(field);
    uint8_t *bytes = malloc(n + field_len);
    // Address 0 is writable in WebAssembly: a failed allocation must stop here.
    if (!bytes) abort();
    memcpy(bytes, body->ptr, last);
    memcpy(bytes + last, field, field_len);
    memcpy(bytes + last + field_len, body->ptr + last, n - last);
    *out = (filter_list_u8_t){bytes, n + field_len};
    return true;
}

bool exports_weir_filter_plugin_process(exports_weir_filter_plugin_list_event_t *events,
                                        exports_weir_filter_plugin_batch_result_t *ret, filter_string_t *err) {
    if (!configured) {
        exports_weir_filter_plugin_list_event_free(events);
        filter_string_dup(err, "process called before configure");
        return false;
    }
    size_t n = events->len;
    weir_filter_types_emitted_t *emitted = malloc(n * sizeof *emitted + 1);
    weir_filter_types_rejected_t *rejected = malloc(n * sizeof *rejected + 1);
    if (!emitted || !rejected) abort();
    size_t emitted_len = 0, rejected_len = 0;
    for (size_t i = 0; i < n; i++) {
        weir_filter_types_event_t *event = &events->ptr[i];
        filter_list_u8_t body;
        if (!mark(&event->body, &body)) {
            rejected[rejected_len].index = (uint32_t)i;
            filter_string_dup(&rejected[rejected_len].reason, "body is not a JSON object");
            rejected_len++;
            weir_filter_types_event_free(event);
            continue;
        }
        // The new body replaces the old one; the event (tag and body) moves
        // into the emitted record, which the bindings free after the call.
        filter_list_u8_free(&event->body);
        event->body = body;
        emitted[emitted_len++] = (weir_filter_types_emitted_t){.parent = {true, (uint32_t)i}, .event = *event};
    }
    free(events->ptr);
    ret->emitted = (weir_filter_types_list_emitted_t){emitted, emitted_len};
    ret->rejected = (weir_filter_types_list_rejected_t){rejected, rejected_len};
    // Once per call, never per record.
    filter_string_t name;
    filter_string_set(&name, "marked");
    weir_filter_host_counter_add(&name, emitted_len);
    return true;
}

// No timers: nothing to emit without input.
void exports_weir_filter_plugin_tick(exports_weir_filter_plugin_timestamp_t now,
                                     exports_weir_filter_plugin_list_event_t *ret) {
    (void)now;
    *ret = (exports_weir_filter_plugin_list_event_t){NULL, 0};
}

// No state to hand over across a reload.
void exports_weir_filter_plugin_snapshot(filter_list_u8_t *ret) { *ret = (filter_list_u8_t){NULL, 0}; }

bool exports_weir_filter_plugin_restore(filter_list_u8_t *state, filter_string_t *err) {
    (void)err;
    filter_list_u8_free(state);
    return true;
}

// `redact` in C: the WIT glue around redact.c. `wit-bindgen c` generates
// filter.h/filter.c at build time (build.sh). Ownership follows the
// generated bindings: an export owns its arguments (and frees or moves
// them), and what it returns is freed by the bindings after the call.
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "redact.h"

// The instance's state: set by configure, carried by snapshot/restore.
static redactor instance;
static bool configured;

static void set_string(filter_string_t *out, const char *text) { filter_string_dup(out, text); }

bool exports_weir_filter_plugin_configure(filter_string_t *config, exports_weir_filter_plugin_config_error_t *err) {
    redact_config parsed;
    redact_config_error error;
    bool ok = redact_parse_config(config->ptr, config->len, &parsed, &error);
    filter_string_free(config);
    if (!ok) {
        err->field.is_some = error.field != NULL;
        if (error.field) set_string(&err->field.val, error.field);
        set_string(&err->message, error.message);
        free(error.field);
        return false;
    }
    if (configured) redact_config_free(&instance.config);
    instance = (redactor){.config = parsed};
    configured = true;
    return true;
}

bool exports_weir_filter_plugin_process(exports_weir_filter_plugin_list_event_t *events,
                                        exports_weir_filter_plugin_batch_result_t *ret, filter_string_t *err) {
    if (!configured) {
        exports_weir_filter_plugin_list_event_free(events);
        set_string(err, "process called before configure");
        return false;
    }
    size_t n = events->len;
    weir_filter_types_emitted_t *emitted = malloc(n * sizeof *emitted + 1);
    // Address 0 is writable in WebAssembly: a failed allocation must stop here.
    if (!emitted) abort();
    weir_filter_types_rejected_t *rejected = NULL;
    size_t emitted_len = 0, rejected_len = 0;
    uint64_t emails = 0, cards = 0;
    redact_buf out = {0};
    for (size_t i = 0; i < n; i++) {
        weir_filter_types_event_t *event = &events->ptr[i];
        uint64_t e, c;
        switch (redact_body(&instance, event->body.ptr, event->body.len, &out, &e, &c)) {
            case REDACT_CHANGED:
                // The new body replaces the old one, and the bindings free it.
                filter_list_u8_free(&event->body);
                event->body = (filter_list_u8_t){out.ptr, out.len};
                out = (redact_buf){0};
                emails += e;
                cards += c;
                break;
            case REDACT_UNCHANGED: break;
            case REDACT_NOT_AN_OBJECT:
                rejected = realloc(rejected, (rejected_len + 1) * sizeof *rejected);
                if (!rejected) abort();
                rejected[rejected_len].index = (uint32_t)i;
                set_string(&rejected[rejected_len].reason, "body is not a json object");
                rejected_len++;
                weir_filter_types_event_free(event);
                continue;
        }
        // The input event moves, tag and body, into the emitted record.
        emitted[emitted_len++] = (weir_filter_types_emitted_t){.parent = {true, (uint32_t)i}, .event = *event};
    }
    redact_buf_free(&out);
    free(events->ptr);
    ret->emitted = (weir_filter_types_list_emitted_t){emitted, emitted_len};
    ret->rejected = (weir_filter_types_list_rejected_t){rejected, rejected_len};
    // Once per call, never per record.
    filter_string_t name;
    filter_string_set(&name, "emails");
    weir_filter_host_counter_add(&name, emails);
    filter_string_set(&name, "cards");
    weir_filter_host_counter_add(&name, cards);
    return true;
}

void exports_weir_filter_plugin_tick(exports_weir_filter_plugin_timestamp_t now,
                                     exports_weir_filter_plugin_list_event_t *ret) {
    (void)now;
    *ret = (exports_weir_filter_plugin_list_event_t){NULL, 0};
}

void exports_weir_filter_plugin_snapshot(filter_list_u8_t *ret) {
    redact_buf state = {0};
    redact_snapshot(&instance, &state);
    *ret = (filter_list_u8_t){state.ptr, state.len};
}

bool exports_weir_filter_plugin_restore(filter_list_u8_t *state, filter_string_t *err) {
    bool ok = redact_restore(&instance, state->ptr, state->len);
    filter_list_u8_free(state);
    if (!ok) set_string(err, "state is not a decimal count of masks");
    return ok;
}

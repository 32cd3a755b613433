// The `redact` example's logic: masks e-mail addresses and payment card
// numbers in one string member of each record's JSON body.
//
// docs/plugins.md ("The redact filter") specifies the behaviour; every
// language's example implements it byte for byte. Nothing here touches the
// WIT bindings, so it also builds natively and is tested that way (test.c).
#ifndef REDACT_H
#define REDACT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A growable byte buffer; `ptr` is malloc'ed (or NULL while empty).
typedef struct {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} redact_buf;

void redact_buf_push(redact_buf *buf, const void *bytes, size_t len);
void redact_buf_free(redact_buf *buf);

// The validated `config:` block. Strings are NUL-terminated UTF-8.
typedef struct {
    char *field;
    size_t field_len;
    char *mask;
    size_t mask_len;
    bool emails;
    regex_t email;  // compiled only when `emails` is true
    // The pattern matches nothing without an `@` (the default does), so
    // text without one skips the regex.
    bool email_needs_at;
    bool cards;
    char *total_field;  // NULL when not set
} redact_config;

// A bad `config:` block: `field` names the key (NULL: the whole block).
typedef struct {
    char *field;
    char message[200];
} redact_config_error;

// Parses the JSON text of the `config:` block. Returns true and fills
// `config`, or returns false and fills `error` (free its `field`).
bool redact_parse_config(const uint8_t *json, size_t len, redact_config *config, redact_config_error *error);
void redact_config_free(redact_config *config);

// One filter instance: its config and the running total of masks.
typedef struct {
    redact_config config;
    uint64_t total;
} redactor;

typedef enum {
    REDACT_UNCHANGED,
    REDACT_CHANGED,
    REDACT_NOT_AN_OBJECT,
} redact_outcome;

// Redacts one body. On REDACT_CHANGED, `out` holds the new body and
// `emails`/`cards` how many of each were masked.
redact_outcome redact_body(redactor *r, const uint8_t *body, size_t len, redact_buf *out, uint64_t *emails,
                           uint64_t *cards);

// The running total as decimal text.
void redact_snapshot(const redactor *r, redact_buf *out);
// Takes over a total from redact_snapshot; false when `state` is not decimal digits.
bool redact_restore(redactor *r, const uint8_t *state, size_t len);

#endif

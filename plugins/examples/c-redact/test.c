// Native test of redact.c: reads a config (argv[1], JSON text) and NDJSON on
// stdin, writes each body, redacted or not, to stdout. The check in
// `just examples-test` diffs it against plugins/examples/testdata.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

int main(int argc, char **argv) {
    const char *config_text = argc > 1 ? argv[1] : "{}";
    redactor r = {0};
    redact_config_error error;
    if (!redact_parse_config((const uint8_t *)config_text, strlen(config_text), &r.config, &error)) {
        printf("config-error %s: %s\n", error.field ? error.field : "(none)", error.message);
        free(error.field);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    redact_buf out = {0};
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') len--;
        uint64_t emails, cards;
        switch (redact_body(&r, (const uint8_t *)line, (size_t)len, &out, &emails, &cards)) {
            case REDACT_CHANGED: fwrite(out.ptr, 1, out.len, stdout); break;
            case REDACT_UNCHANGED: fwrite(line, 1, (size_t)len, stdout); break;
            case REDACT_NOT_AN_OBJECT: printf("rejected"); break;
        }
        putchar('\n');
    }
    free(line);
    redact_buf_free(&out);
    redact_config_free(&r.config);
    return 0;
}

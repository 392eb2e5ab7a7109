/*
 * What one task of `scatterctl fetch` asks for, and where it comes from: the command line
 * (-X, -H, --header-file, --data, --data-file, --session, --timeout, --race, --attempts) gives
 * the defaults of every task; in --input-jsonl mode each line is a JSON object whose fields
 * override those defaults for that line's task. Parsing only: nothing here talks to the daemon.
 *
 * Merge rule (fr_build): a field the line gives replaces the default; headers merge by name
 * (case-insensitive), the line's value replacing the default's, the others kept in order. The
 * method is the line's, else -X, else POST when the task has a body, else GET (curl's rule).
 * HEAD with a body is refused: libcurl would send a HEAD request with a body, which no server
 * expects. A GET with a body is sent as such: the protocol allows a body with any method.
 */
#ifndef SCATTER_CTL_FETCH_REQUEST_H
#define SCATTER_CTL_FETCH_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"
#include "common/proto.h"
#include "ctl/scatter_client.h"

#define FR_METHOD_MAX 16
#define FR_SESSION_MAX 63
/* a line of a header file; longer lines are an error, not truncated */
#define FR_HEADER_LINE_MAX 65536

typedef struct {
    char *url;                          /* owned; NULL: not given */
    char method[FR_METHOD_MAX + 1];     /* "": not given */
    sc_header hdr[PROTO_MAX_HEADERS];   /* name and value in one allocation owned by name */
    size_t nh;
    uint8_t *body;                      /* owned; meaningful when has_body (may be empty) */
    size_t body_len;
    char session[FR_SESSION_MAX + 1];   /* "": not given */
    uint64_t timeout_ms, race, attempts;
    int has_body, has_timeout, has_race, has_attempts;
} fetch_spec;

void fr_spec_free(fetch_spec *s);

/* "Name: value" (n bytes, not necessarily NUL-terminated): the name non-empty without space,
 * tab, ':', CR, LF or NUL; blanks around the value trimmed; the value without CR, LF or NUL.
 * Appends to s. 0, or -EINVAL / -E2BIG (s already holds PROTO_MAX_HEADERS) / -ENOMEM with
 * the reason in err. */
int fr_add_header(fetch_spec *s, const char *text, size_t n, char *err, size_t errcap);

/* The headers of a file, one "Name: value" per line; blank lines and lines whose first
 * non-blank character is '#' are skipped, a CR before the LF is dropped. Appends to s.
 * 0, or negative errno with "FILE:LINE: reason" (or "FILE: reason") in err. */
int fr_header_file(fetch_spec *s, const char *path, char *err, size_t errcap);

/* The whole of a file ('-' = standard input) as the body, refusing more than max bytes.
 * 0, or negative errno with the reason, naming the file, in err. */
int fr_body_file(fetch_spec *s, const char *path, size_t max, char *err, size_t errcap);

/* One line of --input-jsonl (n bytes): an object with "url" (string, required), "method"
 * (1..16 upper-case letters), "headers" (an object of strings, or an array of "Name: value"
 * strings), "body" (string, sent as its UTF-8 bytes) or "body_base64" (string), "session"
 * (string, 1..63 bytes), "timeout" (seconds >= 0, a number), "race" (1..64), "attempts"
 * (0..2^32-1). Other keys and wrong types are errors. *out is zeroed first; free it with
 * fr_spec_free whatever the result. 0, or -EINVAL / -ENOMEM with "field 'KEY': reason" (or
 * "not JSON: ...") in err. */
int fr_parse_jsonl(const char *text, size_t n, fetch_spec *out, char *err, size_t errcap);

/* Fills req from the defaults d and the line l (NULL: the defaults alone), by the merge rule
 * above. req points into d, l and hbuf, which must outlive its use (sc_submit copies it).
 * 0, or -EINVAL with the reason in err. */
int fr_build(const fetch_spec *d, const fetch_spec *l, sc_request *req, sc_header hbuf[PROTO_MAX_HEADERS], char *err,
             size_t errcap);

#endif

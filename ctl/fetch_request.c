/* Task settings of scatterctl fetch: header files, body files, JSON lines, the merge rule
 * (fetch_request.h). */
#include "ctl/fetch_request.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ctl/jsonconv.h"

void fr_spec_free(fetch_spec *s)
{
    free(s->url);
    free(s->body);
    for (size_t i = 0; i < s->nh; i++)
        free((char *)s->hdr[i].name);
    memset(s, 0, sizeof *s);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Adds an already split header; both checked against the protocol's rules. */
static int add_pair(fetch_spec *s, const char *name, size_t nn, const char *value, size_t vn, char *err,
                    size_t errcap)
{
    if (nn == 0) {
        snprintf(err, errcap, "empty header name");
        return -EINVAL;
    }
    for (size_t i = 0; i < nn; i++)
        if (name[i] == ':' || is_blank(name[i]) || name[i] == '\r' || name[i] == '\n' || name[i] == '\0') {
            snprintf(err, errcap, "header name '%.*s' contains a space, tab, ':', CR, LF or NUL", (int)nn, name);
            return -EINVAL;
        }
    if (memchr(value, '\r', vn) || memchr(value, '\n', vn) || memchr(value, '\0', vn)) {
        snprintf(err, errcap, "the value of header '%.*s' contains CR, LF or NUL", (int)nn, name);
        return -EINVAL;
    }
    if (s->nh == PROTO_MAX_HEADERS) {
        snprintf(err, errcap, "more than %d headers", PROTO_MAX_HEADERS);
        return -E2BIG;
    }
    char *b = malloc(nn + vn + 2);
    if (!b) {
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    memcpy(b, name, nn);
    b[nn] = '\0';
    memcpy(b + nn + 1, value, vn);
    b[nn + 1 + vn] = '\0';
    s->hdr[s->nh].name = b;
    s->hdr[s->nh].value = b + nn + 1;
    s->nh++;
    return 0;
}

int fr_add_header(fetch_spec *s, const char *text, size_t n, char *err, size_t errcap)
{
    const char *colon = memchr(text, ':', n);
    if (!colon || colon == text) {
        snprintf(err, errcap, "expected 'Name: value'");
        return -EINVAL;
    }
    const char *v = colon + 1, *end = text + n;
    while (v < end && is_blank(*v))
        v++;
    while (end > v && is_blank(end[-1]))
        end--;
    return add_pair(s, text, (size_t)(colon - text), v, (size_t)(end - v), err, errcap);
}

int fr_header_file(fetch_spec *s, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    char *line = malloc(FR_HEADER_LINE_MAX + 2);
    if (!line) {
        fclose(f);
        snprintf(err, errcap, "%s: out of memory", path);
        return -ENOMEM;
    }
    int rc = 0;
    char why[256];
    for (unsigned long lineno = 1; !rc && fgets(line, FR_HEADER_LINE_MAX + 2, f); lineno++) {
        size_t n = strlen(line);
        if (n == FR_HEADER_LINE_MAX + 1 && line[n - 1] != '\n') {
            snprintf(err, errcap, "%s:%lu: line longer than %d bytes", path, lineno, FR_HEADER_LINE_MAX);
            rc = -E2BIG;
            break;
        }
        if (n && line[n - 1] == '\n')
            n--;
        if (n && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n)) {
            snprintf(err, errcap, "%s:%lu: a NUL byte (is this a text file?)", path, lineno);
            rc = -EINVAL;
            break;
        }
        size_t b = 0;
        while (b < n && isspace((unsigned char)line[b]))
            b++;
        if (b == n || line[b] == '#')
            continue;
        /* leading blanks would hide a folded continuation line, which HTTP no longer allows */
        if (b > 0) {
            snprintf(err, errcap, "%s:%lu: starts with a blank (continuation lines are not supported)", path, lineno);
            rc = -EINVAL;
            break;
        }
        rc = fr_add_header(s, line, n, why, sizeof why);
        if (rc)
            snprintf(err, errcap, "%s:%lu: %s", path, lineno, why);
    }
    if (!rc && ferror(f)) {
        snprintf(err, errcap, "%s: read error", path);
        rc = -EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

int fr_body_file(fetch_spec *s, const char *path, size_t max, char *err, size_t errcap)
{
    int own = strcmp(path, "-") != 0;
    FILE *f = own ? fopen(path, "re") : stdin;
    if (!f) {
        int e = errno;
        snprintf(err, errcap, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 0, len = 0;
    uint8_t *b = NULL;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            /* one byte past max tells "exactly max" from "more" */
            size_t nc = cap ? cap * 2 : 65536;
            if (nc > max + 1)
                nc = max + 1;
            if (nc <= cap) {
                snprintf(err, errcap, "%s: larger than %zu bytes (the daemon's max_request_body)", path, max);
                rc = -EMSGSIZE;
                break;
            }
            uint8_t *nb = realloc(b, nc);
            if (!nb) {
                snprintf(err, errcap, "%s: out of memory", path);
                rc = -ENOMEM;
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t got = fread(b + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, errcap, "%s: read error", path);
                rc = -EIO;
            }
            break;
        }
    }
    if (own)
        fclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    free(s->body);
    s->body = b ? b : malloc(1); /* an empty file is an empty body, not no body */
    if (!s->body) {
        snprintf(err, errcap, "%s: out of memory", path);
        return -ENOMEM;
    }
    s->body_len = len;
    s->has_body = 1;
    return 0;
}

static int field_error(char *err, size_t errcap, const char *key, const char *why)
{
    snprintf(err, errcap, "field '%s': %s", key, why);
    return -EINVAL;
}

static int json_headers(fetch_spec *s, json_t *v, char *err, size_t errcap)
{
    char why[256];
    if (json_is_object(v)) {
        const char *k;
        json_t *hv;
        json_object_foreach(v, k, hv) {
            if (!json_is_string(hv)) {
                snprintf(why, sizeof why, "the value of '%s' must be a string", k);
                return field_error(err, errcap, "headers", why);
            }
            int rc = add_pair(s, k, strlen(k), json_string_value(hv), json_string_length(hv), why, sizeof why);
            if (rc) {
                field_error(err, errcap, "headers", why);
                return rc;
            }
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *hv;
        json_array_foreach(v, i, hv) {
            if (!json_is_string(hv)) {
                snprintf(why, sizeof why, "element %zu must be a \"Name: value\" string", i);
                return field_error(err, errcap, "headers", why);
            }
            char w2[200];
            int rc = fr_add_header(s, json_string_value(hv), json_string_length(hv), w2, sizeof w2);
            if (rc) {
                snprintf(why, sizeof why, "element %zu: %s", i, w2);
                field_error(err, errcap, "headers", why);
                return rc;
            }
        }
        return 0;
    }
    return field_error(err, errcap, "headers", "must be an object of strings or an array of \"Name: value\" strings");
}

static int json_uint(json_t *v, const char *key, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errcap)
{
    char why[96];
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_integer(v) || x < 0 || (uint64_t)x < min || (uint64_t)x > max) {
        snprintf(why, sizeof why, "must be an integer from %llu to %llu", (unsigned long long)min, (unsigned long long)max);
        return field_error(err, errcap, key, why);
    }
    *out = (uint64_t)x;
    return 0;
}

/* One key of a JSON line. */
static int json_field(fetch_spec *s, const char *key, json_t *v, char *err, size_t errcap)
{
    if (strcmp(key, "url") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
            return field_error(err, errcap, key, "must be a non-empty string");
        s->url = strdup(json_string_value(v));
        return s->url ? 0 : -ENOMEM;
    }
    if (strcmp(key, "method") == 0) {
        const char *m = json_is_string(v) ? json_string_value(v) : "";
        size_t n = json_is_string(v) ? json_string_length(v) : 0;
        int good = n >= 1 && n <= FR_METHOD_MAX;
        for (size_t i = 0; good && i < n; i++)
            good = m[i] >= 'A' && m[i] <= 'Z';
        if (!good)
            return field_error(err, errcap, key, "must be 1 to 16 upper-case letters A-Z");
        memcpy(s->method, m, n + 1);
        return 0;
    }
    if (strcmp(key, "headers") == 0)
        return json_headers(s, v, err, errcap);
    if (strcmp(key, "body") == 0 || strcmp(key, "body_base64") == 0) {
        if (s->has_body)
            return field_error(err, errcap, key, "give either 'body' or 'body_base64', not both");
        if (!json_is_string(v))
            return field_error(err, errcap, key, "must be a string");
        const char *t = json_string_value(v);
        size_t n = json_string_length(v);
        if (key[4] == '_') {
            int rc = jc_unbase64(t, n, &s->body, &s->body_len);
            if (rc == -EINVAL)
                return field_error(err, errcap, key, "not valid base64");
            if (rc)
                return rc;
        } else {
            s->body = malloc(n + 1);
            if (!s->body)
                return -ENOMEM;
            memcpy(s->body, t, n + 1);
            s->body_len = n;
        }
        s->has_body = 1;
        return 0;
    }
    if (strcmp(key, "session") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > FR_SESSION_MAX ||
            strlen(json_string_value(v)) != json_string_length(v))
            return field_error(err, errcap, key, "must be a string of 1 to 63 bytes");
        memcpy(s->session, json_string_value(v), json_string_length(v) + 1);
        return 0;
    }
    if (strcmp(key, "timeout") == 0) {
        double t = json_is_number(v) ? json_number_value(v) : -1;
        if (!json_is_number(v) || !isfinite(t) || t < 0 || t * 1000.0 > (double)UINT32_MAX)
            return field_error(err, errcap, key, "must be a number of seconds from 0 to 4294967 (0 = no deadline)");
        s->timeout_ms = (uint64_t)(t * 1000.0 + 0.5);
        s->has_timeout = 1;
        return 0;
    }
    if (strcmp(key, "race") == 0) {
        s->has_race = 1;
        return json_uint(v, key, 1, SC_RACE_MAX, &s->race, err, errcap);
    }
    if (strcmp(key, "attempts") == 0) {
        s->has_attempts = 1;
        return json_uint(v, key, 0, UINT32_MAX, &s->attempts, err, errcap);
    }
    return field_error(err, errcap, key,
                       "unknown (known: url, method, headers, body, body_base64, session, timeout, race, attempts)");
}

int fr_parse_jsonl(const char *text, size_t n, fetch_spec *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *o = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!o) {
        snprintf(err, errcap, "not JSON: %s at column %d", je.text, je.column);
        return -EINVAL;
    }
    int rc = 0;
    if (!json_is_object(o)) {
        snprintf(err, errcap, "not a JSON object");
        rc = -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (rc)
            break;
        if (json_is_null(v)) /* as the protocol does: null is absent */
            continue;
        rc = json_field(out, key, v, err, errcap);
        if (rc == -ENOMEM)
            snprintf(err, errcap, "out of memory");
    }
    if (!rc && !out->url) {
        snprintf(err, errcap, "field 'url': missing");
        rc = -EINVAL;
    }
    json_decref(o);
    return rc;
}

int fr_build(const fetch_spec *d, const fetch_spec *l, sc_request *req, sc_header hbuf[PROTO_MAX_HEADERS], char *err,
             size_t errcap)
{
    static const fetch_spec none;
    if (!l)
        l = &none;
    size_t nh = 0;
    for (size_t i = 0; i < d->nh; i++) {
        int replaced = 0;
        for (size_t j = 0; j < l->nh && !replaced; j++)
            replaced = strcasecmp(d->hdr[i].name, l->hdr[j].name) == 0;
        if (!replaced)
            hbuf[nh++] = d->hdr[i];
    }
    for (size_t j = 0; j < l->nh; j++) {
        if (nh == PROTO_MAX_HEADERS) {
            snprintf(err, errcap, "more than %d headers with the command line's", PROTO_MAX_HEADERS);
            return -EINVAL;
        }
        hbuf[nh++] = l->hdr[j];
    }
    const fetch_spec *b = l->has_body ? l : d->has_body ? d : NULL;
    const char *method = l->method[0] ? l->method : d->method[0] ? d->method : b ? "POST" : "GET";
    if (b && strcmp(method, "HEAD") == 0) {
        snprintf(err, errcap, "a HEAD request cannot have a body");
        return -EINVAL;
    }
    memset(req, 0, sizeof *req);
    req->url = l->url ? l->url : d->url;
    req->method = method;
    req->headers = hbuf;
    req->n_headers = nh;
    if (b) {
        req->body = b->body;
        req->body_len = b->body_len;
    }
    const fetch_spec *t = l->has_timeout ? l : d;
    req->has_timeout = t->has_timeout;
    req->timeout_ms = (uint32_t)t->timeout_ms;
    const fetch_spec *a = l->has_attempts ? l : d;
    req->has_max_attempts = a->has_attempts;
    req->max_attempts = (uint32_t)a->attempts;
    req->race_width = (uint32_t)(l->has_race ? l->race : d->has_race ? d->race : 0);
    req->session = l->session[0] ? l->session : d->session[0] ? d->session : NULL;
    return 0;
}

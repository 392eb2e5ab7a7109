/* Lazy URL reader for fetch: see fetch_input.h for the numbering rule. */
#include "ctl/fetch_input.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fetch_input_open(fetch_input *in, char *const *args, int nargs, const char *file, char *err, size_t errcap)
{
    memset(in, 0, sizeof *in);
    in->args = args;
    in->nargs = nargs;
    if (!file)
        return 0;
    if (strcmp(file, "-") == 0) {
        in->f = stdin;
        return 0;
    }
    in->f = fopen(file, "r");
    if (!in->f) {
        int e = errno;
        snprintf(err, errcap, "cannot open %s: %s", file, strerror(e));
        return -e;
    }
    in->own_f = 1;
    return 0;
}

/* Trims in place; returns the start of the usable text, or NULL if the line is to be skipped. */
static char *usable(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    if (!*s || *s == '#')
        return NULL;
    return s;
}

int fetch_input_next(fetch_input *in, const char **url, uint64_t *n)
{
    while (in->argi < in->nargs) {
        const char *a = in->args[in->argi++];
        if (!*a)
            continue;
        *url = a;
        *n = ++in->n;
        return 1;
    }
    while (in->f && !in->done) {
        errno = 0;
        ssize_t len = getline(&in->line, &in->linecap, in->f);
        if (len < 0) {
            if (ferror(in->f))
                return errno ? -errno : -EIO;
            in->done = 1;
            break;
        }
        in->lineno++;
        char *u = usable(in->line);
        if (!u)
            continue;
        *url = u;
        *n = ++in->n;
        return 1;
    }
    in->done = 1;
    return 0;
}

void fetch_input_close(fetch_input *in)
{
    if (in->own_f && in->f)
        fclose(in->f);
    free(in->line);
    memset(in, 0, sizeof *in);
}

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

/* Reads one line into in->line without its LF. 1, 0 at EOF, -E2BIG (line consumed) or -errno. */
static int read_line(fetch_input *in)
{
    size_t max = in->max_line ? in->max_line : FETCH_INPUT_MAX_LINE, len = 0;
    int too_long = 0, c;
    while ((c = getc_unlocked(in->f)) != EOF && c != '\n') {
        if (too_long)
            continue;
        if (len == max) {
            too_long = 1;
            continue;
        }
        if (len + 1 >= in->linecap) {
            size_t nc = in->linecap ? in->linecap * 2 : 256;
            if (nc > max + 1)
                nc = max + 1;
            char *nl = realloc(in->line, nc);
            if (!nl)
                return -ENOMEM;
            in->line = nl;
            in->linecap = nc;
        }
        in->line[len++] = (char)c;
    }
    if (c == EOF && ferror(in->f))
        return errno ? -errno : -EIO;
    if (c == EOF && len == 0 && !too_long)
        return 0;
    in->lineno++;
    if (too_long)
        return -E2BIG;
    in->line[len] = 0;
    return 1;
}

int fetch_input_next(fetch_input *in, const char **url, uint64_t *n)
{
    in->from_file = 0;
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
        int rc = read_line(in);
        if (rc == -E2BIG) {
            in->from_file = 1;
            *n = ++in->n;
            return rc;
        }
        if (rc < 0)
            return rc;
        if (rc == 0) {
            in->done = 1;
            break;
        }
        char *u = usable(in->line);
        if (!u)
            continue;
        in->from_file = 1;
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

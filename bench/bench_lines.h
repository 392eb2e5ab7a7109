/*
 * bench_lines.h: the two helpers both benchmark clients need, a monotonic clock in ms and a
 * URL (or proxy) list file read into memory. They are static so that each client stays a
 * single `cc` command in scripts/bench.sh. Exits 2 when the file cannot be read, because a
 * benchmark without its input has nothing to measure.
 */
#ifndef BENCH_LINES_H
#define BENCH_LINES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Non-empty lines that do not start with '#', without their line ends. */
static char **read_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    size_t cap = 1024, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *line = NULL;
    size_t lc = 0;
    ssize_t r;
    while ((r = getline(&line, &lc, f)) > 0) {
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = 0;
        if (r == 0 || line[0] == '#')
            continue;
        if (k == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n = k;
    return v;
}

#endif

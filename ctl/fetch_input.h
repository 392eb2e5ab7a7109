/*
 * The URL stream behind `scatterctl fetch`: command-line URLs first, then the lines of one
 * file ('-' = stdin), read one line at a time so a file of any length costs one line buffer.
 * Blank lines and lines whose first non-blank character is '#' are skipped; surrounding
 * whitespace (including a CR from CRLF files) is trimmed. URLs are numbered 1, 2, ... in that
 * order, skipped lines not counted: that number is fetch's n (DIR/<n>.body, the jsonl "n").
 * A line longer than max_line bytes is not kept: it still gets its number, is consumed, and
 * is reported as -E2BIG, so memory stays at max_line whatever the file holds.
 */
#ifndef SCATTER_CTL_FETCH_INPUT_H
#define SCATTER_CTL_FETCH_INPUT_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    char *const *args;
    int nargs, argi;
    FILE *f;
    int own_f;        /* opened by us: close it */
    char *line;
    size_t linecap;
    uint64_t n;       /* URLs returned so far */
    uint64_t lineno;  /* lines read from the file */
    size_t max_line;  /* bytes a line may have; 0 = FETCH_INPUT_MAX_LINE */
    int from_file;    /* the item last returned came from the file (not the arguments) */
    int done;
} fetch_input;

#define FETCH_INPUT_MAX_LINE (1u << 20)

/* file may be NULL (arguments only). 0, or negative errno with a message in err. */
int fetch_input_open(fetch_input *in, char *const *args, int nargs, const char *file, char *err, size_t errcap);
/* 1 with *url (the trimmed line, valid until the next call) and *n; 0 at the end; -E2BIG
 * for a line over max_line (with *n and in->lineno set; call again for the next); another
 * negative errno on a read error. */
int fetch_input_next(fetch_input *in, const char **url, uint64_t *n);
void fetch_input_close(fetch_input *in);

#endif

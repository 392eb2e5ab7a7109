/*
 * scatterctl top: the frame it draws, apart from the terminal handling so tests can check it.
 */
#ifndef SCATTER_CTL_TOP_H
#define SCATTER_CTL_TOP_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    unsigned cols, rows;      /* the window; 0: unlimited (a plain print) */
    uint64_t pool_capacity;   /* from hello */
    unsigned interval_ms;     /* shown in the footer */
    int tty;                  /* 1: reverse-video table header, colours, the key help */
    const char *clock;        /* wall-clock time of the sample, "HH:MM:SS" */
} top_view;

/* Writes one frame from a status map (the 'status' reply's "status"): every line cut at
 * v->cols characters and ended by "\033[K\n" on a tty ("\n" otherwise); at most v->rows lines,
 * hosts that do not fit summed up in one "... N more hosts" line. Absent fields show as 0. */
void top_render(FILE *out, const msgpack_object *status, const top_view *v);

#endif

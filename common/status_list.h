/*
 * HTTP status lists as the config writes them ("2xx,304,400-404": statuses, classes and
 * ranges, comma- or space-separated, all within 100..599). The config validates them with it
 * and the classifier builds its per-status table with it, so both accept the same lists.
 */
#ifndef SCATTER_COMMON_STATUS_LIST_H
#define SCATTER_COMMON_STATUS_LIST_H

#include <stdint.h>

#define STATUS_LIST_MIN 100
#define STATUS_LIST_MAX 599

/* Sets table[s] = mark for every status s the list names; table NULL only checks the list.
 * 0, or -EINVAL at the first bad token (the table may then hold the tokens before it). */
int status_list_parse(const char *spec, uint8_t table[STATUS_LIST_MAX + 1], uint8_t mark);

#endif

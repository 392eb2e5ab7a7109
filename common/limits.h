/*
 * Limits shared by the daemon, its shared table and its clients, named once. Header-only and
 * dependency-free so that shm/ (which does not link common/) uses the same numbers.
 */
#ifndef SCATTER_COMMON_LIMITS_H
#define SCATTER_COMMON_LIMITS_H

/* Proxies one attempt round races at most: the protocol's race_width, the race_width* keys,
 * scatterctl fetch --race, the scheduler's per-task attempt slots and select_claim's k. */
#define SC_RACE_MAX 64

/* Workers at most: the shared table has one slot per worker and per-host masks with one bit
 * per worker in a 64-bit word. */
#define SC_MAX_WORKERS 64

#endif

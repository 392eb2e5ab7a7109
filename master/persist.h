/*
 * The state file: the shared table's health saved as JSON so that a restarted
 * daemon skips the warm-up. Written atomically (temp file, fsync, rename, fsync of the
 * directory); a corrupt or foreign file is set aside, never fatal, never overwritten.
 * Only the master calls these. See persist.c for the format and the restore rules.
 */
#ifndef SCATTER_MASTER_PERSIST_H
#define SCATTER_MASTER_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "shm/table.h"

#define PERSIST_VERSION 1

/* persist_load results (persist_save returns 0 or PERSIST_ERR). */
enum {
    PERSIST_OK = 0,
    PERSIST_MISSING = 1,  /* no file: cold start, not an error */
    PERSIST_CORRUPT = 2,  /* unreadable content: moved aside to result.moved_to, table untouched */
    PERSIST_ERR = -1,     /* I/O error (cannot open, cannot rename aside ...): table untouched */
};

typedef struct {
    int allow_private;    /* restore loopback/private proxies (allow_private_proxies) */
    uint32_t window;      /* health_window in force: restored windows are cut to it */
    int64_t wall_ms;      /* wall clock now, ms since the epoch; 0 = read the real clock */
} persist_load_opts;

typedef struct {
    uint32_t proxies;         /* proxies restored */
    uint32_t hosts;           /* distinct hosts with at least one restored cell */
    uint32_t cells;           /* (proxy, host) cells restored */
    uint32_t skipped_private; /* refused: private address and allow_private == 0 */
    uint32_t skipped_full;    /* proxies or hosts that did not fit in the table */
    uint64_t downtime_ms;     /* wall time between saved_at and the load */
    char moved_to[4200];      /* PERSIST_CORRUPT: where the file now is */
} persist_load_result;

typedef struct {
    uint32_t proxies, cells;
    uint64_t bytes;
} persist_save_result;

/* Writes the table to `path` atomically. Workers may keep updating the table meanwhile: each
 * counter is read once, atomically; the file is a consistent JSON document, not a consistent
 * snapshot across cells (nothing needs that). now_ms is the table clock (shm_now_ms), wall_ms
 * the wall clock for saved_at (0 = real clock). `res` may be NULL. 0 or PERSIST_ERR + err. */
int persist_save(shm_table *t, const char *path, uint64_t now_ms, int64_t wall_ms,
                 persist_save_result *res, char *err, size_t cap);

/* Restores `path` into the table (meant for a fresh table, before the workers start). Returns
 * PERSIST_OK, PERSIST_MISSING, PERSIST_CORRUPT (file renamed to "<path>.corrupt-<unix time>",
 * err says why) or PERSIST_ERR. The table is modified only when PERSIST_OK is returned. */
int persist_load(shm_table *t, const char *path, uint64_t now_ms, const persist_load_opts *opts,
                 persist_load_result *res, char *err, size_t cap);

/* Removes "<path>.tmp.<pid>" files left by a save that was killed, unless <pid> is a live
 * process other than us. Returns how many were removed. */
int persist_remove_stale_tmp(const char *path);

/* Master glue (used by main.c; a no-op when state_file is empty). */
struct master_ctx;
/* At start, after shm_create and before the first source refresh: stale temp files removed,
 * the file loaded, one log line for the outcome. */
void persist_master_load(struct master_ctx *m);
/* Starts the periodic save timer (m->save_w) on m->loop. */
void persist_master_start(struct master_ctx *m);
/* One save with one log line ("state: saved ..."); at shutdown, after the workers exited. */
void persist_master_save(struct master_ctx *m);

#endif

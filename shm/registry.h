/*
 * Proxy and host registries: the identity part of the table. Adding takes the registry lock;
 * lookups of hosts are lock-free (slots are published by a release store of the count).
 */
#ifndef SCATTER_SHM_REGISTRY_H
#define SCATTER_SHM_REGISTRY_H

#include "shm/table.h"

/* Adds a proxy (or finds it if present: dedupe on the canonical form). Sets *idx. ORs
 * `source_mask` into its sources and sets last_listed_ms = now_ms. A proxy that is DEAD is
 * revived to UNKNOWN only if `revive` is non-zero (a source refresh listing it again).
 * Returns 1 if added, 0 if it was already there, -ENOSPC if the table is full, -errno. */
int reg_proxy_add(shm_table *t, const shm_proxy_addr *a, uint32_t source_mask, int revive,
                  uint64_t now_ms, uint32_t *idx);
/* Index of a proxy by canonical address, or SHM_NONE. Takes the lock. */
uint32_t reg_proxy_find(shm_table *t, const shm_proxy_addr *a);
/* State changes (atomic). mark_dead returns 1 if it changed the state. */
int reg_proxy_mark_dead(shm_table *t, uint32_t idx);
/* Back to UNKNOWN and every per-host dead flag and cooldown of it cleared. */
void reg_proxy_revive(shm_table *t, uint32_t idx);

/* Normalises "host[:port]" (lowercase; default ports are kept as given: the caller decides
 * whether "example.com" and "example.com:443" are one key). Index of the host; registers it
 * on first use. Returns 0, -ENOSPC (table full), -EINVAL (bad/too long name), -errno. */
int reg_host_get(shm_table *t, const char *name, uint32_t *idx);
/* Lock-free lookup, SHM_NONE if absent. */
uint32_t reg_host_find(const shm_table *t, const char *name);
/* Master only: frees host slot idx for reuse if nothing can still depend on it: no worker has
 * a live or queued task of it and every rate-limit word of its row is free and due (so a
 * later registration of the same name in another slot cannot send early). Its hash entry,
 * counters, circuit and cells are cleared and its gen bumped. 0, or -EBUSY if not idle. */
int reg_host_reclaim(shm_table *t, uint32_t idx, uint64_t now_ms);
/* A host may be reclaimed once no task of it was created for this long; one that ever had a
 * success (whose history is worth keeping) only after the longer wait. */
#define HOST_RECLAIM_IDLE_MS 10000u
#define HOST_RECLAIM_IDLE_SUCCESS_MS 60000u
/* 1 if slot idx still holds host `name` at generation `gen` (a worker calls it after setting
 * its live_workers bit, to know a reclaim did not take the slot in between). */
int reg_host_still(const shm_table *t, uint32_t idx, const char *name, uint32_t gen);

/* Called by shm_lock, with the lock held, when the previous owner died: puts every published
 * proxy and host back into the hash index (an add that died between publishing the slot and
 * indexing it would otherwise let the same key be added twice). Idempotent. */
void reg_repair_index(shm_table *t);

#endif

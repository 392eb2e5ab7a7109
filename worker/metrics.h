/*
 * Metrics read from the shared table: the status snapshot (docs/PROTOCOL.md §4.4) and the
 * per-second throughput ring. Any process may call these; they only read, except tp_record.
 */
#ifndef SCATTER_WORKER_METRICS_H
#define SCATTER_WORKER_METRICS_H

#include <msgpack.h>
#include <stdint.h>

#include "shm/table.h"

typedef struct {
    uint32_t healthy, cooling, dead;
} pool_counts;

/* Records one finished task in the throughput ring (ok: it succeeded). */
void tp_record(shm_table *t, uint64_t now_ms, int ok);
/* Completions (and successes) over the last `secs` whole seconds before now. */
void tp_window(const shm_table *t, uint64_t now_ms, uint32_t secs, uint64_t *done, uint64_t *ok);

/* Proxy counts over all hosts: dead if the proxy is dead, cooling if every registered host
 * has it cooling or dead, else healthy. */
void metrics_proxy_counts(const shm_table *t, uint64_t now_ms, pool_counts *out);
/* Counts of the pairs of one host. */
void metrics_host_counts(const shm_table *t, uint32_t host, uint64_t now_ms, pool_counts *out);
const char *metrics_circuit_name(uint32_t c);

/* Packs the `status` map (the value, not the reply envelope). */
void metrics_pack_status(msgpack_packer *pk, const shm_table *t, uint64_t now_ms, uint32_t worker);
/* Packs the array of host objects used by `status` and `hosts`. */
void metrics_pack_hosts(msgpack_packer *pk, const shm_table *t, uint64_t now_ms);

#endif

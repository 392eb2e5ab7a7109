/*
 * Metrics of the shared table: the per-second throughput ring (the only part written, by the
 * workers when a task ends) and read-only counts of proxies by state. Any process may call
 * these; what each shared field holds and who writes it is in shm/README.md.
 */
#ifndef SCATTER_SHM_METRICS_H
#define SCATTER_SHM_METRICS_H

#include <stdint.h>

#include "shm/table.h"

typedef struct {
    uint32_t healthy, cooling, dead;
} pool_counts;

/* Records one finished task in the throughput ring (ok: it succeeded). */
void metrics_tp_record(shm_table *t, uint64_t now_ms, int ok);
/* Completions (and successes) over the last `secs` whole seconds before now. */
void metrics_tp_window(const shm_table *t, uint64_t now_ms, uint32_t secs, uint64_t *done, uint64_t *ok);

/* Proxy counts over all hosts: dead if the proxy is dead, cooling if every registered host
 * has it cooling or dead, else healthy. */
void metrics_proxy_counts(const shm_table *t, uint64_t now_ms, pool_counts *out);
/* Counts of the pairs of one host. */
void metrics_host_counts(const shm_table *t, uint32_t host, uint64_t now_ms, pool_counts *out);
const char *metrics_circuit_name(uint32_t c);

#endif

/*
 * The bodies of the `status` and `hosts` replies (docs/PROTOCOL.md section 4.4). Workers only.
 */
#ifndef SCATTER_WORKER_STATUS_H
#define SCATTER_WORKER_STATUS_H

#include <stdint.h>

#include "common/proto.h"
#include "shm/table.h"

/* Adds the pairs of the `status` map (the value, not the reply envelope) to m. */
void status_pack(proto_map *m, const shm_table *t, uint64_t now_ms, uint32_t worker);
/* Adds the pair "hosts": the array of host objects used by `status` and `hosts`. */
void status_pack_hosts(proto_map *m, const shm_table *t, uint64_t now_ms);

#endif

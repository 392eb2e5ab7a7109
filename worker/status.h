/*
 * The bodies of the `status` and `hosts` replies (docs/PROTOCOL.md section 4.4). Workers only.
 */
#ifndef SCATTER_WORKER_STATUS_H
#define SCATTER_WORKER_STATUS_H

#include <msgpack.h>
#include <stdint.h>

#include "shm/table.h"

/* Packs the `status` map (the value, not the reply envelope). */
void status_pack(msgpack_packer *pk, const shm_table *t, uint64_t now_ms, uint32_t worker);
/* Packs the array of host objects used by `status` and `hosts`. */
void status_pack_hosts(msgpack_packer *pk, const shm_table *t, uint64_t now_ms);

#endif

/*
 * The one worker function the master calls: a worker's entry point after fork. The rest of
 * worker/ (worker.h) is the worker's own business.
 */
#ifndef SCATTER_WORKER_MAIN_H
#define SCATTER_WORKER_MAIN_H

#include <stdint.h>

#include "common/config.h"
#include "common/log.h"
#include "shm/table.h"

struct cfg_snapshot;
/* Entry point after fork: cfg is the master's running config (inherited), snap where the
 * master publishes the next one before a SIGHUP. Returns the exit status. */
int worker_main(uint32_t index, scatter_config *cfg, const struct cfg_snapshot *snap, shm_table *tbl, int listen_fd,
                const logger *parent_log);

#endif

/*
 * How the master hands its validated configuration to the workers. Workers never read the
 * file: at fork they inherit the master's copy, and on a reload the master publishes the merged
 * configuration here (a shared mapping made before the first fork) and then sends them SIGHUP;
 * each worker copies it out. Two slots and a sequence number: the master writes the slot the
 * workers are not told to read, then advances the sequence (one writer, the master; readers
 * retry if two publications overtook their copy).
 */
#ifndef SCATTER_COMMON_CONFIG_SNAPSHOT_H
#define SCATTER_COMMON_CONFIG_SNAPSHOT_H

#include <stdint.h>

#include "common/config.h"

typedef struct cfg_snapshot cfg_snapshot;

/* Master, before forking: an empty shared mapping (publication 0: the config at fork, c, is the
 * current one; nothing is copied, so the mapping costs no memory until a reload). 0 or -errno. */
int cfg_snapshot_create(cfg_snapshot **out, const scatter_config *c);
/* Master: publishes c; returns its sequence number. */
uint32_t cfg_snapshot_publish(cfg_snapshot *s, const scatter_config *c);
/* Anyone: copies the latest publication into out, with its sequence number. 0; -ENOENT before
 * the first publication; -EAGAIN if publications kept overtaking the copy. */
int cfg_snapshot_read(const cfg_snapshot *s, scatter_config *out, uint32_t *seq);
/* The latest publication's number (0: none yet). */
uint32_t cfg_snapshot_seq(const cfg_snapshot *s);
/* Unmaps (each process its own view). */
void cfg_snapshot_destroy(cfg_snapshot *s);

#endif

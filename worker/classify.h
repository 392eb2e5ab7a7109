/*
 * Response classifier (DESIGN §9): status tables and body rules compiled from a host's
 * config; one call per finished attempt.
 */
#ifndef SCATTER_WORKER_CLASSIFY_H
#define SCATTER_WORKER_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "shm/health.h"

#define CLS_MAX_PATTERNS 16

typedef struct {
    uint8_t status[600];   /* health_outcome per status 0..599; unknown = BLOCKED */
    uint32_t min_body;
    uint32_t n_patterns;
    char patterns[CLS_MAX_PATTERNS][128];
} classifier;

/* Compiles a host's rules. 0, or -1 with a message (bad spec). */
int cls_compile(classifier *c, const cfg_host *h, char *err, size_t cap);
/* Success, ProxyBlocked or TargetError for a complete HTTP response. */
health_outcome cls_classify(const classifier *c, long status, const char *body, size_t len);

#endif

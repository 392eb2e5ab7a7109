/*
 * Response classifier (docs/RACING.md, "Who is charged for an outcome"): status tables and
 * body rules compiled from a host's config; one call per finished attempt. Also decides who
 * is charged for a SOCKS reply.
 */
#ifndef SCATTER_WORKER_CLASSIFY_H
#define SCATTER_WORKER_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/status_list.h"
#include "shm/health.h"

#define CLS_MAX_PATTERNS 16

typedef struct {
    uint8_t status[STATUS_LIST_MAX + 1]; /* health_outcome per status, or CLS_UNLISTED */
    uint8_t strict;        /* strict_status: an unlisted status is BLOCKED, not the result */
    uint32_t min_body;
    uint32_t n_patterns;
    char patterns[CLS_MAX_PATTERNS][128];
} classifier;

/* status[] value of a status in none of the three lists. */
#define CLS_UNLISTED 0xff

/* Compiles a host's rules. 0, or -1 with a message (bad spec). */
int cls_compile(classifier *c, const cfg_host *h, char *err, size_t cap);
/* Success, ProxyBlocked or TargetError for a complete HTTP response. `head`: the request was
 * a HEAD (no body by definition). `why`, if not NULL, gets a static reason for any outcome
 * other than Success (names the rule: "blocked_status", "min_body_size"...). */
health_outcome cls_classify(const classifier *c, long status, int head, const char *body, size_t len,
                            const char **why);
/* Who is charged for a SOCKS failure reply, given libcurl's CURLINFO_PROXY_ERROR code (a
 * CURLproxycode): TargetUnreachable when the reply is about the target or the route to it,
 * else ProxyDown. */
health_outcome cls_proxy_reply(long curlpx);

/* The `why` of a success status whose body is shorter than min_body_size. */
extern const char CLS_WHY_SHORT_BODY[];
/* 1 if an attempt's outcome means the target itself answered (failed, was unreachable, or
 * refused this proxy by status or body marker): such rounds count toward max_attempts. A
 * transport fault or a short body (what a proxy that cut the response leaves) does not. */
int cls_target_answered(health_outcome o, const char *why);

#endif

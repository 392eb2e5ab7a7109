/*
 * The classifier turns a response into the outcome that decides who is charged: Success
 * completes the task; ProxyBlocked charges the (proxy, host) pair; TargetError charges the
 * host's breaker and no proxy. Statuses in no list are ProxyBlocked (DESIGN §9), because a
 * proxy that gets odd answers is more often the problem than the site.
 */
#include "worker/classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int apply_spec(classifier *c, const char *spec, health_outcome o)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        long a, b;
        if (strlen(tok) == 3 && (tok[1] | 0x20) == 'x' && (tok[2] | 0x20) == 'x') {
            a = (tok[0] - '0') * 100;
            b = a + 99;
        } else {
            char *end;
            a = b = strtol(tok, &end, 10);
            if (*end == '-')
                b = strtol(end + 1, &end, 10);
            if (*end)
                return -1;
        }
        if (a < 100 || b > 599 || a > b)
            return -1;
        for (long s = a; s <= b; s++)
            c->status[s] = (uint8_t)o;
    }
    return 0;
}

int cls_compile(classifier *c, const cfg_host *h, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    for (int s = 0; s < 600; s++)
        c->status[s] = OUTCOME_BLOCKED;
    /* later lists win: an explicit success list can carve a status out of a class */
    if (apply_spec(c, h->target_error_status, OUTCOME_TARGET_ERROR) ||
        apply_spec(c, h->blocked_status, OUTCOME_BLOCKED) || apply_spec(c, h->success_status, OUTCOME_SUCCESS)) {
        snprintf(err, cap, "bad status list for host '%s'", h->name[0] ? h->name : "(default)");
        return -1;
    }
    c->min_body = h->min_body_size;
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", h->blocked_body);
    char *p = buf;
    while (p && *p) {
        char *bar = strchr(p, '|');
        if (bar)
            *bar = '\0';
        if (*p) {
            if (c->n_patterns == CLS_MAX_PATTERNS || strlen(p) >= sizeof c->patterns[0]) {
                snprintf(err, cap, "blocked_body: at most %d patterns of at most 127 bytes", CLS_MAX_PATTERNS);
                return -1;
            }
            memcpy(c->patterns[c->n_patterns++], p, strlen(p) + 1); /* length checked above */
        }
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

health_outcome cls_classify(const classifier *c, long status, const char *body, size_t len)
{
    if (status < 100 || status > 599)
        return OUTCOME_BLOCKED;
    health_outcome o = (health_outcome)c->status[status];
    if (o != OUTCOME_SUCCESS)
        return o;
    if (len < c->min_body)
        return OUTCOME_BLOCKED;
    for (uint32_t i = 0; i < c->n_patterns; i++)
        if (memmem(body, len, c->patterns[i], strlen(c->patterns[i])))
            return OUTCOME_BLOCKED;
    return OUTCOME_SUCCESS;
}

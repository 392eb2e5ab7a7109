/*
 * The classifier turns a response into the outcome that decides who is charged: Success
 * completes the task; ProxyBlocked charges the (proxy, host) pair; TargetError charges the
 * host's breaker and no proxy.
 *
 * A status in no list (a 404, a 301) is the target's own answer, delivered by a proxy that
 * worked: it is the task's result and counts as a success for the proxy. Charging the proxy
 * instead (the classifier's original rule) put most of a pool into cooldown for a host whose
 * URLs were simply missing, and no other proxy would have got a different answer. strict_status = true
 * restores the old rule for hosts that answer a block with an odd status.
 *
 * min_body_size applies only where a body is defined: not to a HEAD, a 204 or a 304.
 */
#include "worker/classify.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cls_compile(classifier *c, const cfg_host *h, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    memset(c->status, CLS_UNLISTED, sizeof c->status);
    c->strict = h->strict_status != 0;
    /* later lists win: an explicit success list can carve a status out of a class */
    if (status_list_parse(h->target_error_status, c->status, OUTCOME_TARGET_ERROR) ||
        status_list_parse(h->blocked_status, c->status, OUTCOME_BLOCKED) ||
        status_list_parse(h->success_status, c->status, OUTCOME_SUCCESS)) {
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

static int body_marked(const classifier *c, const char *body, size_t len)
{
    for (uint32_t i = 0; i < c->n_patterns; i++)
        if (memmem(body, len, c->patterns[i], strlen(c->patterns[i])))
            return 1;
    return 0;
}

health_outcome cls_classify(const classifier *c, long status, int head, const char *body, size_t len,
                            const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!body)
        len = 0;
    if (status < STATUS_LIST_MIN || status > STATUS_LIST_MAX) {
        *why = "status outside 100-599";
        return OUTCOME_BLOCKED;
    }
    uint8_t v = c->status[status];
    if (v == CLS_UNLISTED && c->strict) {
        *why = "status in no list, strict_status";
        return OUTCOME_BLOCKED;
    }
    if (v == OUTCOME_BLOCKED) {
        *why = "blocked_status";
        return OUTCOME_BLOCKED;
    }
    if (v == OUTCOME_TARGET_ERROR) {
        *why = "target_error_status";
        return OUTCOME_TARGET_ERROR;
    }
    /* a listed success status promises content; a target's other answers promise nothing */
    int bodiless = head || status == 204 || status == 304 || status < 200;
    if (v == OUTCOME_SUCCESS && !bodiless && len < c->min_body) {
        *why = CLS_WHY_SHORT_BODY;
        return OUTCOME_BLOCKED;
    }
    if (len && body_marked(c, body, len)) {
        *why = "body matches blocked_body";
        return OUTCOME_BLOCKED;
    }
    return OUTCOME_SUCCESS;
}

health_outcome cls_proxy_reply(long curlpx)
{
    switch (curlpx) {
    /* SOCKS5 replies 0x03, 0x04, 0x05, 0x08: the proxy is up and answered, but cannot reach
     * this target (or this kind of address). Another host may work through it, so this is
     * never a reason to evict the proxy for every host. */
    case CURLPX_REPLY_NETWORK_UNREACHABLE:
    case CURLPX_REPLY_HOST_UNREACHABLE:
    case CURLPX_REPLY_CONNECTION_REFUSED:
    case CURLPX_REPLY_ADDRESS_TYPE_NOT_SUPPORTED:
        return OUTCOME_TARGET_UNREACHABLE;
    default:
        return OUTCOME_PROXY_DOWN;
    }
}

const char CLS_WHY_SHORT_BODY[] = "body shorter than min_body_size";

int cls_target_answered(health_outcome o, const char *why)
{
    if (o == OUTCOME_TARGET_ERROR || o == OUTCOME_TARGET_UNREACHABLE)
        return 1;
    /* a short or empty body is also what a proxy that cut the response produces (a close
     * before Content-Length arrived reads as an empty body), so it is not taken as the
     * target's word; a status or a marker in the body is */
    return o == OUTCOME_BLOCKED && why != CLS_WHY_SHORT_BODY;
}

/*
 * Proxy sources: local files and http(s) URLs, one proxy per line. A failed fetch keeps what
 * the table already has (nothing is ever removed by a refresh) and logs a warning. Each
 * source is a bit in a proxy's `sources` mask, which is how [host:NAME] pools pick proxies.
 * Loopback and private addresses are refused unless allow_private_proxies is set, so a
 * hostile list cannot aim the daemon at local services.
 */
#include "master/master.h"

#include "common/config.h"

#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC_MAX_BYTES (64u << 20)

int src_parse_list(const char *list, source *out, uint32_t *n, char *err, size_t cap)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = cfg_trim(tok);
        if (!*t)
            continue;
        if (*n == SRC_MAX) {
            snprintf(err, cap, "sources: more than %d sources", SRC_MAX);
            return -1;
        }
        source *s = &out[*n];
        memset(s, 0, sizeof *s);
        char *eq = strchr(t, '=');
        char *colon = strstr(t, "://");
        if (eq && (!colon || eq < colon)) {
            *eq = '\0';
            char *name = cfg_trim(t);
            if (!*name || strlen(name) >= sizeof s->name) {
                snprintf(err, cap, "sources: bad source name '%s'", name);
                return -1;
            }
            for (char *p = name; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
                    snprintf(err, cap, "sources: source name '%s' may hold only letters, digits, '_' and '-'", name);
                    return -1;
                }
            snprintf(s->name, sizeof s->name, "%s", name);
            t = cfg_trim(eq + 1);
        }
        if (!*t) {
            snprintf(err, cap, "sources: source '%s' has no location", s->name);
            return -1;
        }
        if (strstr(t, "://") && strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0) {
            snprintf(err, cap, "sources: '%s': only files and http(s) URLs are supported", t);
            return -1;
        }
        snprintf(s->loc, sizeof s->loc, "%s", t);
        for (uint32_t i = 0; i < *n; i++)
            if (s->name[0] && strcmp(out[i].name, s->name) == 0) {
                snprintf(err, cap, "sources: source name '%s' used twice", s->name);
                return -1;
            }
        (*n)++;
    }
    return 0;
}

int64_t src_mask_for(const master_ctx *m, const char *names, char *err, size_t cap)
{
    char buf[CFG_STR_MAX];
    snprintf(buf, sizeof buf, "%s", names);
    int64_t mask = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        uint32_t i;
        for (i = 0; i < m->n_sources; i++)
            if (strcmp(m->sources[i].name, tok) == 0)
                break;
        if (i == m->n_sources) {
            snprintf(err, cap, "unknown source name '%s' (name sources as NAME=LOCATION in [scatter] sources)", tok);
            return -1;
        }
        mask |= (int64_t)1 << i;
    }
    return mask;
}

typedef struct {
    char *data;
    size_t len, cap;
} membuf;

static size_t mem_write(char *p, size_t sz, size_t n, void *ud)
{
    membuf *b = ud;
    size_t add = sz * n;
    if (b->len + add + 1 > SRC_MAX_BYTES)
        return 0;
    if (b->len + add + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->len + add + 1)
            nc *= 2;
        char *nd = realloc(b->data, nc);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static int fetch(master_ctx *m, const source *s, membuf *b, char *err, size_t cap)
{
    if (strncmp(s->loc, "http://", 7) == 0 || strncmp(s->loc, "https://", 8) == 0) {
        CURL *e = curl_easy_init();
        if (!e) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        char ebuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(e, CURLOPT_URL, s->loc);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)m->cfg->source_timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)m->cfg->source_timeout_ms);
        curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
        curl_easy_setopt(e, CURLOPT_USERAGENT, m->cfg->user_agent);
        CURLcode rc = curl_easy_perform(e);
        curl_easy_cleanup(e);
        if (rc != CURLE_OK) {
            snprintf(err, cap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
            return -1;
        }
        return 0;
    }
    FILE *f = fopen(s->loc, "r");
    if (!f) {
        snprintf(err, cap, "%s", strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (mem_write(chunk, 1, n, b) != n) {
            fclose(f);
            snprintf(err, cap, "larger than %u MiB", SRC_MAX_BYTES >> 20);
            return -1;
        }
    fclose(f);
    return 0;
}

int src_refresh(master_ctx *m, int revive)
{
    int total = 0, ok_sources = 0;
    uint64_t now = shm_now_ms();
    for (uint32_t i = 0; i < m->n_sources; i++) {
        const source *s = &m->sources[i];
        const char *label = s->name[0] ? s->name : s->loc;
        membuf b = {0};
        char err[256];
        if (fetch(m, s, &b, err, sizeof err)) {
            LOGW(&m->log, "source %s: fetch failed (%s); keeping the proxies already known", label, err);
            free(b.data);
            continue;
        }
        ok_sources++;
        uint32_t lines = 0, added = 0, listed = 0, rejected = 0, private_ = 0, full = 0, revived = 0;
        char *p = b.data;
        while (p && *p) {
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            lines++;
            shm_proxy_addr a;
            paddr_result r = paddr_parse(p, len, &a);
            if (r == PADDR_OK && !m->cfg->allow_private_proxies && paddr_is_private(&a)) {
                private_++;
                rejected++;
                if (private_ <= 3)
                    LOGD(&m->log, "source %s line %u: private or loopback address refused "
                                  "(allow_private_proxies = false)", label, lines);
            } else if (r == PADDR_OK) {
                uint32_t idx;
                uint32_t was_dead = 0;
                uint32_t found = reg_proxy_find(&m->tbl, &a);
                if (found != SHM_NONE)
                    was_dead = atomic_load(&m->tbl.proxies[found].state) == PSTATE_DEAD;
                int rc = reg_proxy_add(&m->tbl, &a, 1u << i, revive, now, &idx);
                if (rc == 1)
                    added++;
                if (rc >= 0) {
                    listed++;
                    if (was_dead && revive)
                        revived++;
                } else if (rc == -ENOSPC) {
                    full++;
                }
            } else if (r != PADDR_SKIP) {
                rejected++;
                if (rejected - private_ <= 5)
                    LOGD(&m->log, "source %s line %u rejected: %s", label, lines, paddr_strerror(r));
            }
            p = nl ? nl + 1 : NULL;
        }
        free(b.data);
        total += (int)listed;
        LOGI(&m->log, "source %s: %u lines, %u proxies (%u new%s), %u rejected (%u private)%s", label, lines, listed,
             added, revived ? ", some revived" : "", rejected, private_, full ? " - TABLE FULL, raise max_proxies" : "");
        if (revived)
            LOGI(&m->log, "source %s: %u dead proxies listed again and revived", label, revived);
    }
    if (m->n_sources && ok_sources == 0)
        return -1;
    return total;
}

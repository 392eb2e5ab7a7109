/*
 * Proxy sources: local files and http(s) URLs, one proxy per line. A failed fetch keeps what
 * the table already has (nothing is ever removed by a refresh) and logs a warning. Each
 * source is a bit in a proxy's `sources` mask, which is how [host:NAME] pools pick proxies.
 * Loopback and private addresses are refused unless allow_private_proxies is set, so a
 * hostile list cannot aim the daemon at local services.
 *
 * The master's loop never waits for a source: downloads, file reads and DNS lookups all
 * block, so each source is fetched by a child process (fetch_child) that reads the whole
 * list, parses every line, resolves every name and checks every address the name has, and
 * writes to a pipe one record per line:
 *   P <canonical url>                                 an accepted proxy; host an IP literal
 *   E <message>                                       the fetch failed; nothing follows
 *   C <lines> <rejected> <private> <unresolved> <nul> the end, with the child's counts
 * The table keeps the IP that was checked, never the name, so no later lookup (by libcurl
 * in a worker) can turn an accepted name into a local address. The master reads the pipe
 * without blocking, checks each record again (it is the table's writer: IP literal, private
 * rule of the current config) and merges it at once. A child that outlives its deadline is
 * killed; so is every child at stop. Children are reaped by their own ev_child watcher; the
 * supervisor's catch-all watcher sees their pids too and ignores them (not a worker slot).
 */
#include "master/master.h"

#include "common/buf.h"
#include "common/config.h"
#include "common/redis_url.h"

#include "shm/proxy_addr.h"
#include "shm/registry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SRC_MAX_BYTES (64u << 20)
/* Rejected lines logged in detail per kind and fetch (debug level); the rest are counted. */
#define SRC_LOG_EACH 5
/* Names resolved once per fetch: lists repeat a host with many ports. */
#define SRC_NAME_CACHE 1024
/* A fetch may take source_timeout to download, as long again to resolve its names, and this
 * much more (one getaddrinfo started just before the resolution budget ends) before the
 * master kills it. */
#define SRC_KILL_SLACK_MS 5000

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
    if (b->len + add > SRC_MAX_BYTES)
        return 0;
    if (b->len + add > b->cap) {
        size_t nc = buf_next_cap(b->cap, b->len + add, 65536, SRC_MAX_BYTES);
        char *nd = realloc(b->data, nc);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    return add;
}

static const char *label_of(const source *s)
{
    return s->name[0] ? s->name : s->loc;
}

/* Runs in the fetch child: blocking is fine here. */
static int fetch(const scatter_config *cfg, const source *s, membuf *b, char *err, size_t cap)
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
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->source_timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->source_timeout_ms);
        curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
        curl_easy_setopt(e, CURLOPT_USERAGENT, cfg->user_agent);
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
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        snprintf(err, cap, "%s", strerror(rerr));
        return -1;
    }
    return 0;
}

typedef struct {
    char name[SHM_ADDR_HOST_MAX]; /* "" = empty entry */
    char ip[SHM_ADDR_HOST_MAX];
    paddr_result r;
} name_entry;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

typedef struct {
    const scatter_config *cfg;
    const logger *lg;
    const char *label;
    name_entry *cache;      /* SRC_NAME_CACHE entries, or NULL if there was no memory */
    uint64_t resolve_until; /* names looked up after this count as unresolved */
    uint32_t lines, rejected, private_, unresolved, nul, late, resolved;
} child_state;

/* Resolves a parsed address in place: the name becomes the IP that was checked. */
static paddr_result child_resolve(child_state *cs, shm_proxy_addr *a)
{
    if (paddr_is_ip(a))
        return paddr_resolve(a, (int)cs->cfg->allow_private_proxies, NULL);
    name_entry *e = NULL;
    if (cs->cache) {
        e = &cs->cache[name_hash(a->host) % SRC_NAME_CACHE];
        if (e->name[0] && strcmp(e->name, a->host) == 0) {
            if (e->r == PADDR_OK)
                snprintf(a->host, sizeof a->host, "%s", e->ip);
            return e->r;
        }
    }
    char name[SHM_ADDR_HOST_MAX];
    snprintf(name, sizeof name, "%s", a->host);
    paddr_result r;
    int gai = 0;
    if (shm_now_ms() > cs->resolve_until) {
        /* a list of thousands of names that each time out must not hold the refresh for hours */
        r = PADDR_UNRESOLVED;
        cs->late++;
    } else {
        r = paddr_resolve(a, (int)cs->cfg->allow_private_proxies, &gai);
    }
    if (r == PADDR_UNRESOLVED && gai && cs->unresolved < SRC_LOG_EACH)
        LOGD(cs->lg, "source %s line %u: name '%s' does not resolve (%s)", cs->label, cs->lines, name,
             gai_strerror(gai));
    else if (r == PADDR_OK && cs->resolved++ < SRC_LOG_EACH)
        LOGD(cs->lg, "source %s line %u: name '%s' resolved to %s", cs->label, cs->lines, name, a->host);
    if (e && !(r == PADDR_UNRESOLVED && !gai)) {
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->ip, sizeof e->ip, "%s", r == PADDR_OK ? a->host : "");
        e->r = r;
    }
    return r;
}

/* One line of the list (len bytes, no '\n'): writes a P record or counts why not. */
static int child_line(child_state *cs, const char *p, size_t len, FILE *out)
{
    cs->lines++;
    if (memchr(p, '\0', len)) {
        /* a NUL is never part of an address; the line is refused as a whole and the lines
         * after it are read as usual */
        cs->nul++;
        cs->rejected++;
        if (cs->nul <= SRC_LOG_EACH)
            LOGD(cs->lg, "source %s line %u rejected: NUL byte", cs->label, cs->lines);
        return 0;
    }
    shm_proxy_addr a;
    paddr_result r = paddr_parse(p, len, &a);
    if (r == PADDR_SKIP)
        return 0;
    if (r == PADDR_OK)
        r = child_resolve(cs, &a);
    if (r == PADDR_OK) {
        char url[SHM_ADDR_HOST_MAX + 2 * SHM_CRED_MAX + 32];
        if (paddr_format(&a, url, sizeof url) < 0)
            return 0; /* cannot happen: every field is bounded */
        return fprintf(out, "P %s\n", url) < 0 ? -1 : 0;
    }
    cs->rejected++;
    if (r == PADDR_PRIVATE) {
        cs->private_++;
        if (cs->private_ <= SRC_LOG_EACH)
            LOGD(cs->lg, "source %s line %u: private or loopback address refused (allow_private_proxies = false)",
                 cs->label, cs->lines);
    } else if (r == PADDR_UNRESOLVED) {
        cs->unresolved++;
    } else if (cs->rejected - cs->private_ - cs->unresolved - cs->nul <= SRC_LOG_EACH) {
        LOGD(cs->lg, "source %s line %u rejected: %s", cs->label, cs->lines, paddr_strerror(r));
    }
    return 0;
}

/* The error text goes on one record line: no control bytes. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static void __attribute__((noreturn)) fetch_child(master_ctx *m, uint32_t i, int wfd, pid_t master)
{
    /* a fetch without its master has no one to report to */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != master)
        _exit(1);
    prctl(PR_SET_NAME, "scatterd-fetch");
    /* the master's libev handlers must not run here: SIGTERM ends a fetch like any process */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    /* a fetch lives seconds: it keeps the log file it inherited, and a SIGUSR1 sent to the
     * whole group (systemctl kill) must not end it */
    signal(SIGUSR1, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* what the master serves and its other fetches are none of this child's business */
    close(m->listen_fd);
    if (m->ready_fd >= 0)
        close(m->ready_fd);
    for (uint32_t k = 0; k < SRC_MAX; k++)
        if (k != i && m->fetches[k].fd >= 0 && m->fetches[k].pid)
            close(m->fetches[k].fd);
    logger lg = m->log;
    log_set_process(&lg, "fetch", 0);
    const source *s = &m->fetches[i].src;
    FILE *out = fdopen(wfd, "w");
    if (!out)
        _exit(1);
    membuf b = {0};
    char err[256];
    if (fetch(m->cfg, s, &b, err, sizeof err)) {
        one_line(err);
        fprintf(out, "E %s\n", err);
        _exit(fclose(out) == 0 ? 0 : 1);
    }
    child_state cs = {.cfg = m->cfg, .lg = &lg, .label = label_of(s)};
    cs.cache = calloc(SRC_NAME_CACHE, sizeof *cs.cache);
    cs.resolve_until = shm_now_ms() + m->cfg->source_timeout_ms;
    const char *p = b.data, *end = b.data + b.len;
    int werr = 0;
    while (p && p < end && !werr) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        werr = child_line(&cs, p, len, out);
        p = nl ? nl + 1 : end;
    }
    if (cs.late)
        LOGW(&lg, "source %s: name lookups took longer than source_timeout (%u s); %u names not looked up",
             cs.label, m->cfg->source_timeout_ms / 1000, cs.late);
    if (!werr)
        fprintf(out, "C %u %u %u %u %u\n", cs.lines, cs.rejected, cs.private_, cs.unresolved, cs.nul);
    free(cs.cache);
    free(b.data);
    _exit(fclose(out) == 0 && !werr ? 0 : 1);
}

/* ---- master side ---- */

static void fetch_finish(src_fetch *f);
static int fetch_start(master_ctx *m, uint32_t i, int revive);

static void merge(src_fetch *f, const char *url, size_t len)
{
    master_ctx *m = f->m;
    shm_proxy_addr a;
    /* the child is our own code, but the table's writer checks what it writes */
    if (paddr_parse(url, len, &a) != PADDR_OK || !paddr_is_ip(&a) ||
        (!m->cfg->allow_private_proxies && paddr_is_private(&a))) {
        if (f->refused++ == 0)
            LOGW(&m->log, "source %s: fetcher handed over '%.*s', which is not an allowed IP address; refused",
                 label_of(&f->src), (int)(len > 200 ? 200 : len), url);
        return;
    }
    if (m->cfg->shard[1] > 1) {
        /* the canonical form every instance computes alike from the same line: the shard
         * of a proxy is a property of the proxy, not of this box (docs/SCALING.md) */
        char canon[600];
        int cn = paddr_format(&a, canon, sizeof canon);
        if (cn > 0 && fnv1a64(canon, strlen(canon)) % m->cfg->shard[1] != m->cfg->shard[0]) {
            f->sharded++;
            return;
        }
    }
    uint32_t idx, was_dead = 0;
    uint32_t found = reg_proxy_find(&m->tbl, &a);
    if (found != SHM_NONE)
        was_dead = atomic_load(&m->tbl.proxies[found].state) == PSTATE_DEAD;
    int rc = reg_proxy_add(&m->tbl, &a, 1u << f->idx, f->revive, shm_now_ms(), &idx);
    if (rc == 1)
        f->added++;
    if (rc >= 0) {
        f->listed++;
        if (was_dead && f->revive)
            f->revived++;
    } else if (rc == -ENOSPC) {
        f->full++;
    }
}

/* One record from the child; -1 if it is not one (the child is then killed). */
static int record(src_fetch *f, char *line, size_t len)
{
    if (len >= 2 && line[0] == 'P' && line[1] == ' ') {
        if (!f->stale && !f->ended)
            merge(f, line + 2, len - 2);
        return 0;
    }
    if (len >= 2 && line[0] == 'E' && line[1] == ' ') {
        snprintf(f->err, sizeof f->err, "%.*s", (int)(len - 2), line + 2);
        f->ended = 1;
        return 0;
    }
    if (len >= 2 && line[0] == 'C' && line[1] == ' ') {
        line[len] = '\0';
        if (sscanf(line + 2, "%u %u %u %u %u", &f->lines, &f->rejected, &f->private_, &f->unresolved, &f->nul) != 5)
            return -1;
        f->ended = 1;
        return 0;
    }
    return -1;
}

static void fetch_kill(src_fetch *f, const char *why)
{
    if (!f->err[0] && why)
        snprintf(f->err, sizeof f->err, "%s", why);
    if (f->pid && !f->reaped)
        kill(f->pid, SIGKILL);
}

static void fetch_close(src_fetch *f)
{
    if (f->fd >= 0) {
        ev_io_stop(f->m->loop, &f->io_w);
        close(f->fd);
        f->fd = -1;
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    src_fetch *f = w->data;
    ssize_t n = read(f->fd, f->buf + f->blen, sizeof f->buf - f->blen - 1);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        snprintf(f->err, sizeof f->err, "reading its pipe: %s", strerror(errno));
        n = 0;
    }
    if (n == 0) {
        fetch_close(f);
        if (f->reaped)
            fetch_finish(f);
        return;
    }
    f->blen += (size_t)n;
    char *p = f->buf, *end = f->buf + f->blen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (record(f, p, (size_t)(nl - p))) {
            fetch_kill(f, "its fetcher wrote something that is not a record; killed");
            fetch_close(f);
            return;
        }
        p = nl + 1;
    }
    f->blen = (size_t)(end - p);
    memmove(f->buf, p, f->blen);
    if (f->blen == sizeof f->buf - 1) {
        fetch_kill(f, "its fetcher wrote an over-long record; killed");
        fetch_close(f);
    }
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    src_fetch *f = w->data;
    ev_child_stop(loop, w);
    f->reaped = 1;
    f->status = w->rstatus;
    if (f->fd < 0)
        fetch_finish(f);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    src_fetch *f = w->data;
    char why[96];
    snprintf(why, sizeof why, "no result after %llu s; killed",
             (unsigned long long)((shm_now_ms() - f->started_ms) / 1000));
    fetch_kill(f, why);
}

static void fetch_finish(src_fetch *f)
{
    master_ctx *m = f->m;
    ev_timer_stop(m->loop, &f->deadline_w);
    const char *label = label_of(&f->src);
    int ok = f->ended && !f->err[0];
    if (f->stale) {
        LOGI(&m->log, "source %s: fetch abandoned (the source changed with a reload)", label);
    } else if (ok) {
        uint32_t rejected = f->rejected + f->refused, private_ = f->private_;
        char extra[160] = "";
        size_t n = 0;
        if (f->unresolved)
            n += (size_t)snprintf(extra + n, sizeof extra - n, ", %u unresolved names", f->unresolved);
        if (f->nul && n < sizeof extra)
            n += (size_t)snprintf(extra + n, sizeof extra - n, ", %u lines with a NUL byte", f->nul);
        if (f->refused && n < sizeof extra)
            n += (size_t)snprintf(extra + n, sizeof extra - n, ", %u refused by the master", f->refused);
        if (m->cfg->shard[1] > 1 && n < sizeof extra)
            snprintf(extra + n, sizeof extra - n, ", %u outside shard %u/%u", f->sharded, m->cfg->shard[0],
                     m->cfg->shard[1]);
        m->shard_dropped[f->idx] = f->sharded;
        uint64_t dropped = 0;
        for (uint32_t s = 0; s < SRC_MAX; s++)
            dropped += m->shard_dropped[s];
        atomic_store(&m->tbl.hdr->shard_dropped, dropped);
        LOGI(&m->log, "source %s: %u lines, %u proxies (%u new%s), %u rejected (%u private)%s%s", label, f->lines,
             f->listed, f->added, f->revived ? ", some revived" : "", rejected, private_, extra,
             f->full ? " - TABLE FULL, raise max_proxies" : "");
        if (f->revived)
            LOGI(&m->log, "source %s: %u dead proxies listed again and revived", label, f->revived);
    } else {
        char why[320];
        if (f->err[0])
            snprintf(why, sizeof why, "%s", f->err);
        else if (WIFSIGNALED(f->status))
            snprintf(why, sizeof why, "its fetcher was killed by signal %d", WTERMSIG(f->status));
        else
            snprintf(why, sizeof why, "its fetcher exited with status %d before the end of the list",
                     WIFEXITED(f->status) ? WEXITSTATUS(f->status) : -1);
        if (f->listed)
            LOGW(&m->log, "source %s: fetch failed (%s) after %u proxies; keeping the proxies already known", label,
                 why, f->listed);
        else
            LOGW(&m->log, "source %s: fetch failed (%s); keeping the proxies already known", label, why);
    }
    int stale = f->stale, revive = f->revive;
    uint32_t i = f->idx;
    f->pid = 0;
    m->src_running--;
    if (!stale) {
        m->src_done++;
        m->src_ok += (uint32_t)ok;
    }
    /* the source that replaced it in a reload is fetched now, not at the next refresh */
    if (stale && !m->stopping && i < m->n_sources)
        fetch_start(m, i, revive);
    if (m->src_running == 0) {
        if (m->src_done && m->src_ok == 0)
            LOGW(&m->log, "every proxy source failed (sources are retried every %u s)",
                 m->cfg->source_refresh_interval_ms / 1000);
        LOGI(&m->log, "%u proxies in the table", atomic_load(&m->tbl.hdr->n_proxies));
        m->src_done = m->src_ok = 0;
    }
}

static int fetch_start(master_ctx *m, uint32_t i, int revive)
{
    src_fetch *f = &m->fetches[i];
    int p[2];
    if (pipe(p)) {
        LOGW(&m->log, "source %s: cannot start a fetch: pipe: %s", label_of(&m->sources[i]), strerror(errno));
        return -1;
    }
    f->m = m;
    f->idx = i;
    f->src = m->sources[i];
    f->fd = -1; /* the child must not close its own pipe as "another fetch's" */
    /* as for workers: no signal handled by the inherited libev handlers before the child
     * resets them */
    sigset_t ss, old;
    sigfillset(&ss);
    sigprocmask(SIG_BLOCK, &ss, &old);
    pid_t master = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        fetch_child(m, i, p[1], master);
    }
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        LOGW(&m->log, "source %s: cannot start a fetch: fork: %s", label_of(&f->src), strerror(err));
        return -1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    f->pid = pid;
    f->fd = p[0];
    f->reaped = f->status = f->ended = f->stale = 0;
    f->revive = revive;
    f->startup = !revive;
    f->started_ms = shm_now_ms();
    f->lines = f->rejected = f->private_ = f->unresolved = f->nul = 0;
    f->listed = f->added = f->full = f->revived = f->refused = f->sharded = 0;
    f->err[0] = '\0';
    f->blen = 0;
    ev_io_init(&f->io_w, io_cb, f->fd, EV_READ);
    f->io_w.data = f;
    ev_io_start(m->loop, &f->io_w);
    ev_child_init(&f->child_w, child_cb, pid, 0);
    f->child_w.data = f;
    ev_child_start(m->loop, &f->child_w);
    ev_timer_init(&f->deadline_w, deadline_cb, (2.0 * m->cfg->source_timeout_ms + SRC_KILL_SLACK_MS) / 1000.0, 0.);
    f->deadline_w.data = f;
    ev_timer_start(m->loop, &f->deadline_w);
    m->src_running++;
    LOGD(&m->log, "source %s: fetch started (pid %d)", label_of(&f->src), (int)pid);
    return 0;
}

int src_refresh(master_ctx *m, int revive)
{
    for (uint32_t i = 0; i < SRC_MAX; i++) {
        src_fetch *f = &m->fetches[i];
        if (f->pid && !f->stale &&
            (i >= m->n_sources || strcmp(f->src.loc, m->sources[i].loc) || strcmp(f->src.name, m->sources[i].name))) {
            f->stale = 1;
            fetch_kill(f, NULL);
        }
    }
    if (m->stopping)
        return 0;
    int started = 0;
    uint64_t now = shm_now_ms();
    for (uint32_t i = 0; i < m->n_sources; i++) {
        src_fetch *f = &m->fetches[i];
        if (f->pid) {
            if (!f->stale)
                LOGI(&m->log, "source %s is still being fetched (for %llu s); not started again", label_of(&f->src),
                     (unsigned long long)((now - f->started_ms) / 1000));
            continue;
        }
        if (fetch_start(m, i, revive) == 0)
            started++;
    }
    return started;
}

static void wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

void src_wait(master_ctx *m, uint32_t ms)
{
    ev_timer t;
    ev_timer_init(&t, wait_cb, ms / 1000.0, 0.);
    ev_timer_start(m->loop, &t);
    while (m->src_running && ev_is_active(&t) && !m->stopping)
        ev_run(m->loop, EVRUN_ONCE);
    ev_timer_stop(m->loop, &t);
    for (uint32_t i = 0; i < SRC_MAX; i++)
        if (m->fetches[i].pid && !m->stopping)
            LOGI(&m->log, "source %s is still being fetched; serving without it until it ends",
                 label_of(&m->fetches[i].src));
}

int src_loading(const master_ctx *m)
{
    for (uint32_t i = 0; i < SRC_MAX; i++)
        if (m->fetches[i].pid && m->fetches[i].startup)
            return 1;
    return 0;
}

void src_stop(master_ctx *m)
{
    for (uint32_t i = 0; i < SRC_MAX; i++) {
        src_fetch *f = &m->fetches[i];
        if (!f->pid)
            continue;
        if (!f->reaped) {
            kill(f->pid, SIGKILL);
            /* SIGKILL ends it at once; reaping here leaves no zombie and no watcher behind */
            while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            ev_child_stop(m->loop, &f->child_w);
        }
        fetch_close(f);
        ev_timer_stop(m->loop, &f->deadline_w);
        LOGI(&m->log, "source %s: fetch stopped", label_of(&f->src));
        f->pid = 0;
        m->src_running--;
    }
}

/* The Redis stream client of `scatterctl fetch --redis` (ctl/redis_client.h). */
#include "ctl/redis_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/limits.h"
#include "common/proto.h"
#include "common/redis_url.h"
#include "common/rng.h"

#define RQ_DEFAULT_WINDOW 1000u
#define RQ_READ_COUNT "1000"

enum { S_FREE, S_UNSENT, S_SENT, S_CONFIRMED, S_BACKOFF };

typedef struct {
    uint64_t id;
    void *user;
    uint8_t *req;                /* the packed submit map, kept for resubmission */
    size_t req_len;
    int state;
    unsigned resubmits, pool_full;
    int64_t not_before;
} rq_task;

struct rq_client {
    redis_url url;
    char stream[256];
    char reply[320];
    char last_id[64];            /* of the reply stream: XREAD after it */
    redisContext *ctx;
    unsigned window, outstanding;
    uint32_t gen;
    rq_task *tasks;
    uint32_t *free_stack;        /* free slots */
    uint32_t n_free;
    uint32_t *sent_q;            /* slots in the order their XADD was appended */
    uint32_t n_sent;
    sc_result **ready;           /* results not yet returned: a ring */
    uint32_t r_head, r_n;
    uint64_t dups;
    uint64_t rnd;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static redisContext *dial(const rq_client *c, char *err, size_t cap)
{
    struct timeval tv = {5, 0};
    redisContext *ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (!ctx || ctx->err) {
        snprintf(err, cap, "cannot connect to redis at %s:%d: %s", c->url.host, c->url.port,
                 ctx ? ctx->errstr : "out of memory");
        redisFree(ctx);
        return NULL;
    }
    char db[16];
    snprintf(db, sizeof db, "%u", c->url.db);
    const char *auth[] = {"AUTH", c->url.password}, *sel[] = {"SELECT", db};
    const char *const *setup[2];
    int n = 0;
    if (c->url.password[0])
        setup[n++] = auth;
    if (c->url.db)
        setup[n++] = sel;
    for (int i = 0; i < n; i++) {
        redisReply *r = redisCommandArgv(ctx, 2, (const char **)setup[i], NULL);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, cap, "redis %s: %s", setup[i][0], r ? r->str : ctx->errstr);
            freeReplyObject(r);
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }
    return ctx;
}

int rq_open(const char *url, const char *stream, unsigned window, rq_client **out, char *err, size_t cap)
{
    *out = NULL;
    rq_client *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    char why[160];
    if (redis_url_parse(url, &c->url, why, sizeof why)) {
        const char *at = strrchr(url, '@'); /* never echo a password */
        snprintf(err, cap, "bad --redis '%s%s': %s", at ? "redis://***" : "", at ? at : url, why);
        free(c);
        return -EINVAL;
    }
    snprintf(c->stream, sizeof c->stream, "%s", stream);
    c->window = window ? window : RQ_DEFAULT_WINDOW;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->rnd = rng_seed((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(c->reply, sizeof c->reply, "scatter:reply:%s:%d:%08llx", host, (int)getpid(),
             (unsigned long long)(rng_next(&c->rnd) & 0xffffffffu));
    snprintf(c->last_id, sizeof c->last_id, "0-0");
    c->tasks = calloc(c->window, sizeof *c->tasks);
    c->free_stack = calloc(c->window, sizeof *c->free_stack);
    c->sent_q = calloc(c->window, sizeof *c->sent_q);
    c->ready = calloc(c->window, sizeof *c->ready);
    if (!c->tasks || !c->free_stack || !c->sent_q || !c->ready) {
        rq_free(c);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->window; i++)
        c->free_stack[c->n_free++] = c->window - 1 - i;
    c->ctx = dial(c, err, cap);
    if (!c->ctx) {
        rq_free(c);
        return -ECONNREFUSED;
    }
    *out = c;
    return 0;
}

void rq_free(rq_client *c)
{
    if (!c)
        return;
    if (c->ctx && !c->ctx->err) {
        const char *argv[] = {"DEL", c->reply};
        freeReplyObject(redisCommandArgv(c->ctx, 2, argv, NULL));
    }
    redisFree(c->ctx);
    for (uint32_t i = 0; c->tasks && i < c->window; i++)
        free(c->tasks[i].req);
    for (uint32_t i = 0; c->ready && i < c->r_n; i++)
        sc_result_free(c->ready[(c->r_head + i) % c->window]);
    free(c->tasks);
    free(c->free_stack);
    free(c->sent_q);
    free(c->ready);
    free(c);
}

unsigned rq_window(const rq_client *c) { return c->window; }
unsigned rq_outstanding(const rq_client *c) { return c->outstanding; }
uint64_t rq_duplicates(const rq_client *c) { return c->dups; }
const char *rq_reply_stream(const rq_client *c) { return c->reply; }

int rq_submit(rq_client *c, const sc_request *req, void *user, char *err, size_t cap)
{
    if (!req || !req->url || !*req->url) {
        snprintf(err, cap, "a request needs a url");
        return -EINVAL;
    }
    if (req->race_width > SC_RACE_MAX || req->n_headers > PROTO_MAX_HEADERS) {
        snprintf(err, cap, req->race_width > SC_RACE_MAX ? "race_width must be 1..64" : "at most 128 headers");
        return -EINVAL;
    }
    if (!c->n_free) {
        snprintf(err, cap, "window of %u tasks is full", c->window);
        return -EAGAIN;
    }
    uint32_t slot = c->free_stack[c->n_free - 1];
    if (++c->gen == 0)
        c->gen = 1;
    uint64_t id = ((uint64_t)c->gen << 32) | slot;
    msgpack_sbuffer sb;
    if (sc_pack_submit(req, id, &sb))
        return -ENOMEM;
    c->n_free--;
    rq_task *t = &c->tasks[slot];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->user = user;
    t->req_len = sb.size;
    t->req = (uint8_t *)msgpack_sbuffer_release(&sb);
    t->state = S_UNSENT;
    c->outstanding++;
    return 0;
}

static void ready_push(rq_client *c, sc_result *r)
{
    c->ready[(c->r_head + c->r_n) % c->window] = r;
    c->r_n++;
}

static void task_done(rq_client *c, uint32_t slot, sc_result *r)
{
    rq_task *t = &c->tasks[slot];
    if (r)
        r->resubmits = t->resubmits;
    free(t->req);
    t->req = NULL;
    t->state = S_FREE;
    c->free_stack[c->n_free++] = slot;
    if (r)
        ready_push(c, r);
    else
        c->outstanding--; /* out of memory building the result: nothing to hand over */
}

/* Appends an XADD for every task due to be sent, then reads the confirmations. 0, or -EIO
 * (the connection is broken). */
static int send_due(rq_client *c)
{
    int64_t now = now_ms();
    c->n_sent = 0;
    for (uint32_t i = 0; i < c->window; i++) {
        rq_task *t = &c->tasks[i];
        if (t->state != S_UNSENT && !(t->state == S_BACKOFF && t->not_before <= now))
            continue;
        const char *argv[] = {"XADD", c->stream, "*", "task", (const char *)t->req, "reply_to", c->reply};
        size_t lens[] = {4, strlen(c->stream), 1, 4, t->req_len, 8, strlen(c->reply)};
        if (redisAppendCommandArgv(c->ctx, 7, argv, lens) != REDIS_OK)
            return -EIO;
        t->state = S_SENT;
        c->sent_q[c->n_sent++] = i;
    }
    for (uint32_t k = 0; k < c->n_sent; k++) {
        redisReply *r = NULL;
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK)
            return -EIO;
        uint32_t slot = c->sent_q[k];
        if (r->type == REDIS_REPLY_ERROR) {
            /* Redis refused the entry (a stream of another type, out of memory): one failure */
            rq_task *t = &c->tasks[slot];
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            proto_map m;
            proto_map_begin(&m, &sb);
            proto_map_u64(&m, "id", t->id);
            proto_map_bool(&m, "ok", 0);
            proto_map_str(&m, "error", "internal");
            proto_map_strn(&m, "message", r->str, r->len);
            sc_result *res = NULL;
            if (proto_map_end(&m) == 0) {
                msgpack_unpacked u;
                msgpack_unpacked_init(&u);
                if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS)
                    res = sc_result_decode(t->id, t->user, &u.data);
                msgpack_unpacked_destroy(&u);
            }
            msgpack_sbuffer_destroy(&sb);
            task_done(c, slot, res);
        } else {
            c->tasks[slot].state = S_CONFIRMED;
        }
        freeReplyObject(r);
    }
    c->n_sent = 0;
    return 0;
}

/* One result entry from the reply stream. */
static void take_result(rq_client *c, const redisReply *fields)
{
    const redisReply *v = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING && fields->element[i]->len == 6 &&
            memcmp(fields->element[i]->str, "result", 6) == 0)
            v = fields->element[i + 1];
    if (!v || v->type != REDIS_REPLY_STRING)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    uint64_t id;
    if (msgpack_unpack_next(&u, v->str, v->len, NULL) != MSGPACK_UNPACK_SUCCESS || proto_get_u64(&u.data, "id", &id)) {
        msgpack_unpacked_destroy(&u);
        return;
    }
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    rq_task *t = slot < c->window ? &c->tasks[slot] : NULL;
    if (!t || t->state == S_FREE || t->id != id) {
        c->dups++; /* answered already: a takeover ran it twice */
        msgpack_unpacked_destroy(&u);
        return;
    }
    int ok = 0;
    proto_str code = {"", 0};
    proto_get_bool(&u.data, "ok", &ok);
    proto_get_str(&u.data, "error", &code);
    if (!ok && code.n == 9 && memcmp(code.p, "pool_full", 9) == 0) {
        /* as the socket client: 50 ms, 100, 200 ... up to 2 s, with jitter */
        unsigned shift = t->pool_full < 6 ? t->pool_full : 6;
        int64_t pause = (int64_t)(50u << shift);
        pause += (int64_t)(rng_next(&c->rnd) % (uint64_t)(pause / 2 + 1));
        t->pool_full++;
        t->resubmits++;
        t->state = S_BACKOFF;
        t->not_before = now_ms() + pause;
        msgpack_unpacked_destroy(&u);
        return;
    }
    sc_result *res = sc_result_decode(id, t->user, &u.data);
    msgpack_unpacked_destroy(&u);
    task_done(c, slot, res);
}

/* XREAD what is there (waiting up to block_ms), take it, and delete it from Redis. */
static int read_results(rq_client *c, int block_ms)
{
    char block[16];
    snprintf(block, sizeof block, "%d", block_ms > 0 ? block_ms : 1);
    const char *argv[] = {"XREAD", "COUNT", RQ_READ_COUNT, "BLOCK", block, "STREAMS", c->reply, c->last_id};
    redisReply *r = redisCommandArgv(c->ctx, 8, argv, NULL);
    if (!r)
        return -EIO;
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "scatterctl fetch: redis XREAD: %s\n", r->str);
        freeReplyObject(r);
        return -EPROTO;
    }
    const redisReply *entries = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 2)
        entries = r->element[0]->element[1];
    if (entries && entries->type == REDIS_REPLY_ARRAY && entries->elements) {
        size_t n = entries->elements;
        const char **del = calloc(n + 2, sizeof *del);
        size_t nd = 0;
        if (del) {
            del[nd++] = "XDEL";
            del[nd++] = c->reply;
        }
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(c->last_id, sizeof c->last_id, "%.*s", (int)e->element[0]->len, e->element[0]->str);
            if (del)
                del[nd++] = e->element[0]->str;
            take_result(c, e->element[1]);
        }
        /* read results go: a long run's reply stream holds only what is not read yet */
        if (del && nd > 2)
            freeReplyObject(redisCommandArgv(c->ctx, (int)nd, del, NULL));
        free(del);
    }
    freeReplyObject(r);
    return c->ctx->err ? -EIO : 0;
}

/* The connection broke: dial again for up to RQ_RECONNECT_MS. Tasks whose XADD was not
 * confirmed may or may not be in the stream; they are added again (a second result for one
 * of them is dropped as a duplicate). */
static int reconnect(rq_client *c, char *err, size_t cap)
{
    fprintf(stderr, "\nscatterctl fetch: lost the connection to redis (%s); reconnecting\n",
            c->ctx ? c->ctx->errstr : "?");
    redisFree(c->ctx);
    c->ctx = NULL;
    int64_t give_up = now_ms() + RQ_RECONNECT_MS;
    unsigned pause = 100;
    for (;;) {
        c->ctx = dial(c, err, cap);
        if (c->ctx)
            break;
        if (now_ms() >= give_up)
            return -EIO;
        usleep(pause * 1000);
        pause = pause * 2 > 2000 ? 2000 : pause * 2;
    }
    for (uint32_t i = 0; i < c->window; i++)
        if (c->tasks[i].state == S_SENT) {
            c->tasks[i].state = S_UNSENT;
            c->tasks[i].resubmits++;
        }
    fprintf(stderr, "scatterctl fetch: reconnected to redis\n");
    return 0;
}

int rq_next_result(rq_client *c, int timeout_ms, sc_result **out, char *err, size_t cap)
{
    *out = NULL;
    if (!c->outstanding)
        return -ENOENT;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (c->r_n) {
            *out = c->ready[c->r_head];
            c->r_head = (c->r_head + 1) % c->window;
            c->r_n--;
            c->outstanding--;
            return 1;
        }
        int rc = send_due(c);
        int64_t now = now_ms();
        int block = (int)(deadline > now ? deadline - now : 0);
        /* a task waiting out a pool_full pause is sent when the pause ends */
        for (uint32_t i = 0; i < c->window; i++)
            if (c->tasks[i].state == S_BACKOFF) {
                int64_t d = c->tasks[i].not_before - now;
                if (d < block)
                    block = d > 0 ? (int)d : 1;
            }
        if (rc == 0 && !c->r_n)
            rc = read_results(c, block);
        if (rc == -EPROTO) {
            snprintf(err, cap, "redis refused XREAD");
            return -EIO;
        }
        if (rc) {
            if (reconnect(c, err, cap))
                return -EIO;
            continue;
        }
        if (!c->r_n && now_ms() >= deadline)
            return 0;
    }
}

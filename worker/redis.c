/*
 * A worker as a consumer of the Redis task stream (docs/SCALING.md).
 *
 * Two connections per worker: `rd` only ever carries the blocking XREADGROUP, `wr` carries
 * everything else (results, XACK, XDEL, the XPENDING and XCLAIMs that take over a dead
 * consumer's entries, the XCLAIM that keeps our own entries fresh). On one connection a
 * result would wait behind a read blocked for up to a second.
 * Either connection failing drops both and starts a reconnect with backoff; the state change
 * is logged once, never each failed attempt.
 *
 * Every entry read or claimed becomes an `rtask` held until its task ends; the task's id (the
 * owner's name for it, task.h) is the rtask's address, so a result finds its entry in O(1).
 * Held entries are bounded by redis_batch and by the room left in the shared pool.
 */
#include "worker/redis.h"

#include "common/list.h"
#include "common/redis_url.h"
#include "shm/table.h"
#include "worker/conn.h"
#include "worker/task.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GROUP "scatter"
#define BLOCK_MS "1000"
#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 10000u
#define ENTRY_ID_MAX 48
/* ids of our own entries refreshed by one XCLAIM: bounds its argv */
#define REFRESH_MAX 512
/* entries looked at (and claimed) per claim tick: bounds the XCLAIMs' argv */
#define CLAIM_MAX 512
/* the longest time between two looks for consumers to forget */
#define SWEEP_MAX_MS 600000u
/* a blocking read unanswered this long past its BLOCK time: the connection is dead */
#define READ_STALL_MS 5000

typedef struct rtask {
    struct rtask *prev, *next;  /* the held list */
    task *t;                    /* the running task; NULL while it is being admitted */
    uint64_t client_id;         /* the submit's id, echoed in the result */
    uint64_t touched_ms;        /* when its idle time in the group was last reset */
    char entry[ENTRY_ID_MAX];
    char reply_to[];            /* the stream its result goes to */
} rtask;

typedef enum { R_DOWN, R_CONNECTING, R_UP } rstate;

typedef struct redis_front {
    task_owner owner;           /* first: the task layer's view of the stream */
    worker_ctx *w;
    redis_url url;
    char addr[INET6_ADDRSTRLEN];
    char consumer[160];
    redisAsyncContext *rd, *wr;
    int rd_ready, wr_ready, group_ready;
    rstate state;
    int was_up;                 /* ever connected: the next "connected" line is a reconnection */
    int down_logged;            /* the current outage was logged */
    int reading, claiming, stopping;
    uint64_t read_since_ms;     /* when the outstanding XREADGROUP was sent */
    uint32_t backoff_ms;
    ev_timer retry_w;           /* the next connection attempt */
    ev_timer claim_w;           /* taking over idle entries, and the refresh of our own */
    ev_timer room_w;            /* no room in the pool: look again shortly */
    char cursor[ENTRY_ID_MAX + 1]; /* where the next look at the pending list starts */
    rtask *held;
    uint32_t n_held;
    uint32_t writes;            /* commands on wr whose replies have not come */
    uint64_t taken, claimed, answered, dropped, bad, dead; /* since start, for the stop line */
    uint64_t sweep_at_ms;       /* when to look for consumers to forget next */
    int write_err_logged;
    int backlog;                /* a task was held back for the writer's backlog */
} redis_front;

static void connect_both(redis_front *f);
static void go_down(redis_front *f, const char *why);

static uint32_t room(const redis_front *f)
{
    const worker_ctx *w = f->w;
    uint32_t batch = w->cfg->redis_batch;
    if (f->n_held >= batch)
        return 0;
    int64_t pending = atomic_load(&w->tbl->hdr->c.pending);
    int64_t free_pool = (int64_t)w->cfg->pool_capacity - pending;
    if (free_pool <= 0)
        return 0;
    uint32_t r = batch - f->n_held;
    return (int64_t)r > free_pool ? (uint32_t)free_pool : r;
}

static rtask *held_find(const redis_front *f, const char *id, size_t n)
{
    for (rtask *r = f->held; r; r = r->next)
        if (strlen(r->entry) == n && memcmp(r->entry, id, n) == 0)
            return r;
    return NULL;
}

static void held_drop(redis_front *f, rtask *r)
{
    LIST_UNLINK(f->held, r, prev, next);
    f->n_held--;
    free(r);
}

/* ---- writing: results, acknowledgements ---- */

/* Every reply on wr: one command fewer in flight. */
static redis_front *answered_on_wr(redisAsyncContext *ac)
{
    redis_front *f = ac->data;
    if (f->writes)
        f->writes--;
    return f;
}

static void write_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    if (f->backlog && f->wr && sdslen(f->wr->c.obuf) < CONN_OUT_HIGH) {
        f->backlog = 0;
        worker_need_dispatch(f->w); /* tasks skipped while Redis lagged may start */
    }
    if (r && r->type == REDIS_REPLY_ERROR && !f->write_err_logged) {
        /* one line per connection: a wrong reply_to repeats for every result */
        LOGW(&f->w->log, "redis: %s failed: %.*s (further write errors on this connection are not logged)",
             (const char *)priv, (int)r->len, r->str);
        f->write_err_logged = 1;
    }
}

static int wr_usable(const redis_front *f)
{
    return f->state == R_UP && f->wr;
}

/* XACK then XDEL: acknowledged entries would otherwise stay in the stream for ever. */
static void ack_entry(redis_front *f, const char *entry)
{
    if (!wr_usable(f))
        return;
    const char *stream = f->w->cfg->redis_stream;
    const char *ack[] = {"XACK", stream, GROUP, entry};
    const char *del[] = {"XDEL", stream, entry};
    if (redisAsyncCommandArgv(f->wr, write_cb, "XACK", 4, ack, NULL) == REDIS_OK)
        f->writes++;
    if (redisAsyncCommandArgv(f->wr, write_cb, "XDEL", 3, del, NULL) == REDIS_OK)
        f->writes++;
}

/* Sends the packed result to reply_to, then acknowledges the entry. With Redis away the
 * result is lost and the entry stays pending: it is claimed and run again once it is back. */
static void answer(redis_front *f, const char *reply_to, const char *entry, const msgpack_sbuffer *sb)
{
    if (!wr_usable(f)) {
        f->dropped++;
        atomic_fetch_add(&f->w->tbl->hdr->c.redis_left, 1);
        return;
    }
    char maxlen[16];
    snprintf(maxlen, sizeof maxlen, "%u", f->w->cfg->redis_reply_maxlen);
    const char *argv[] = {"XADD", reply_to, "MAXLEN", "~", maxlen, "*", "result", sb->data};
    size_t lens[] = {4, strlen(reply_to), 6, 1, strlen(maxlen), 1, 6, sb->size};
    if (redisAsyncCommandArgv(f->wr, write_cb, "XADD of a result", 8, argv, lens) == REDIS_OK)
        f->writes++;
    ack_entry(f, entry);
    f->answered++;
    atomic_fetch_add(&f->w->tbl->hdr->c.redis_answered, 1);
}

static void reply_begin(msgpack_sbuffer *sb, proto_map *m, uint64_t id, int ok)
{
    msgpack_sbuffer_init(sb);
    proto_map_begin(m, sb);
    proto_map_u64(m, "id", id);
    proto_map_str(m, "op", "submit");
    proto_map_bool(m, "ok", ok);
}

static void reply_end(redis_front *f, proto_map *m, msgpack_sbuffer *sb, const char *reply_to, const char *entry)
{
    if (proto_map_end(m) == 0)
        answer(f, reply_to, entry, sb);
    else
        LOGW(&f->w->log, "redis: out of memory packing the result of entry %s; it stays pending", entry);
    msgpack_sbuffer_destroy(sb);
}

/* An answer without a task: a refusal at submission, or an entry that is not a task. */
static void answer_error(redis_front *f, const char *reply_to, const char *entry, uint64_t id, scatter_err e,
                         const char *msg)
{
    msgpack_sbuffer sb;
    proto_map m;
    reply_begin(&sb, &m, id, 0);
    /* the fields of an immediate refusal on the socket (no elapsed_ms: it took no time) */
    proto_map_str(&m, "error", err_code(e));
    proto_map_str(&m, "message", msg);
    proto_map_str(&m, "host", "");
    proto_map_u64(&m, "attempts", 0);
    proto_map_str(&m, "last_error", "");
    reply_end(f, &m, &sb, reply_to, entry);
}

/* ---- the task owner ---- */

static redis_front *front_of(task_owner *o)
{
    return (redis_front *)o;
}

static void deliver_result(task_owner *o, task *t, const task_result *r)
{
    redis_front *f = front_of(o);
    rtask *rt = (rtask *)(uintptr_t)t->id;
    msgpack_sbuffer sb;
    proto_map m;
    reply_begin(&sb, &m, rt->client_id, 1);
    task_pack_result(&m, r);
    reply_end(f, &m, &sb, rt->reply_to, rt->entry);
    held_drop(f, rt);
}

static void deliver_failure(task_owner *o, task *t, const task_failure *tf)
{
    redis_front *f = front_of(o);
    rtask *rt = (rtask *)(uintptr_t)t->id;
    if (tf->code == ERR_SHUTTING_DOWN) {
        /* this instance stops before the task ended: leave the entry pending, so another
         * instance claims and runs it, rather than answer the client shutting_down */
        f->dropped++;
        atomic_fetch_add(&f->w->tbl->hdr->c.redis_left, 1);
        held_drop(f, rt);
        return;
    }
    msgpack_sbuffer sb;
    proto_map m;
    reply_begin(&sb, &m, rt->client_id, 0);
    task_pack_failure(&m, tf);
    reply_end(f, &m, &sb, rt->reply_to, rt->entry);
    held_drop(f, rt);
}

static void forget(task_owner *o, task *t)
{
    (void)o;
    (void)t; /* the rtask went with the delivery */
}

/* Results Redis has not taken yet: past CONN_OUT_HIGH no stream task starts (as for a socket
 * client that does not read), so a slow Redis bounds what this worker holds for it. */
static int backlogged(const task_owner *o)
{
    redis_front *f = (redis_front *)o;
    int b = f->wr && f->state == R_UP && f->wr->c.obuf && sdslen(f->wr->c.obuf) >= CONN_OUT_HIGH;
    if (b)
        f->backlog = 1;
    return b;
}

static const task_owner_ops REDIS_TASK_OPS = {
    .deliver_result = deliver_result,
    .deliver_failure = deliver_failure,
    .forget = forget,
    .backlogged = backlogged,
};

/* ---- entries ---- */

static const redisReply *field_of(const redisReply *fields, const char *name)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == n && memcmp(k->str, name, n) == 0) {
            const redisReply *v = fields->element[i + 1];
            return v->type == REDIS_REPLY_STRING ? v : NULL;
        }
    }
    return NULL;
}

/* One entry [id, [field, value, ...]] read or claimed: becomes a task, or is answered at once. */
static void take_entry(redis_front *f, const redisReply *e, int claimed)
{
    worker_ctx *w = f->w;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *idr = e->element[0];
    if (idr->len >= ENTRY_ID_MAX)
        return;
    char entry[ENTRY_ID_MAX];
    memcpy(entry, idr->str, idr->len);
    entry[idr->len] = '\0';
    if (held_find(f, entry, idr->len))
        return; /* ours already (a claim of our own entry that our refresh missed) */
    if (f->stopping)
        return; /* left pending: another instance claims it */
    const redisReply *fields = e->element[1];
    const redisReply *task_f = field_of(fields, "task");
    const redisReply *reply_f = field_of(fields, "reply_to");
    if (!reply_f || reply_f->len == 0 || reply_f->len > 512 || memchr(reply_f->str, '\0', reply_f->len)) {
        /* nobody to answer: acknowledge it so that it does not come back for ever */
        if (f->bad++ == 0)
            LOGW(&w->log, "redis: entry %s has no usable reply_to field; acknowledged and dropped "
                          "(further ones are counted, not logged)", entry);
        ack_entry(f, entry);
        return;
    }
    rtask *rt = calloc(1, sizeof *rt + reply_f->len + 1);
    if (!rt) {
        LOGW(&w->log, "redis: out of memory taking entry %s; it stays pending", entry);
        return;
    }
    memcpy(rt->entry, entry, idr->len + 1);
    memcpy(rt->reply_to, reply_f->str, reply_f->len);
    rt->touched_ms = shm_now_ms();
    LIST_PUSH(f->held, rt, prev, next);
    f->n_held++;
    shm_counters *c = &w->tbl->hdr->c;
    if (claimed) {
        f->claimed++;
        atomic_fetch_add(&c->redis_claimed, 1);
    } else {
        f->taken++;
        atomic_fetch_add(&c->redis_read, 1);
    }

    char err[400];
    if (!task_f) {
        answer_error(f, rt->reply_to, rt->entry, 0, ERR_BAD_REQUEST, "the entry has no 'task' field");
        held_drop(f, rt);
        return;
    }
    long fr = proto_frame_scan((const uint8_t *)task_f->str, task_f->len, w->cfg->max_frame);
    if (fr != (long)task_f->len) {
        snprintf(err, sizeof err, "the 'task' field is not one msgpack map: %s",
                 fr > 0 ? "bytes after the map" : proto_frame_strerror(fr));
        answer_error(f, rt->reply_to, rt->entry, 0, ERR_BAD_REQUEST, err);
        held_drop(f, rt);
        return;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t pos = 0;
    proto_request *r = calloc(1, sizeof *r);
    if (!r || msgpack_unpack_next(&u, task_f->str, task_f->len, &pos) != MSGPACK_UNPACK_SUCCESS) {
        answer_error(f, rt->reply_to, rt->entry, 0, r ? ERR_BAD_REQUEST : ERR_INTERNAL,
                     r ? "the 'task' field is not msgpack" : "out of memory");
        goto out;
    }
    if (proto_decode_request(&u.data, r, err, sizeof err)) {
        answer_error(f, rt->reply_to, rt->entry, r->has_id ? r->id : 0, ERR_BAD_REQUEST, err);
        goto out;
    }
    rt->client_id = r->id;
    if (r->op != OP_SUBMIT) {
        answer_error(f, rt->reply_to, rt->entry, r->id, ERR_BAD_REQUEST, "a stream entry must be a submit");
        goto out;
    }
    task_submission s = task_submission_of(r, (uint64_t)(uintptr_t)rt);
    task *t;
    scatter_err code = task_submit(&f->owner, &s, &t, err, sizeof err);
    if (code == ERR_SHUTTING_DOWN)
        goto out; /* pending: another instance takes it */
    if (code != ERR_OK) {
        answer_error(f, rt->reply_to, rt->entry, r->id, code, err);
        goto out;
    }
    rt->t = t;
    rt = NULL; /* held until its task ends */
out:
    if (rt)
        held_drop(f, rt);
    free(r);
    msgpack_unpacked_destroy(&u);
}

/* ---- reading and claiming ---- */

static void read_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = ac->data;
    redisReply *r = reply;
    f->reading = 0;
    if (!r)
        return; /* the connection went away; go_down was or will be called */
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            /* the stream was deleted, or Redis restarted empty: make them again */
            f->group_ready = 0;
            if (wr_usable(f)) {
                const char *argv[] = {"XGROUP", "CREATE", f->w->cfg->redis_stream, GROUP, "0", "MKSTREAM"};
                redisAsyncCommandArgv(f->wr, NULL, NULL, 6, argv, NULL);
                f->group_ready = 1;
            }
            return;
        }
        go_down(f, r->str);
        return;
    }
    /* [[stream, [entry, ...]]], or nil when BLOCK ran out */
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t i = 0; i < st->element[1]->elements; i++)
                take_entry(f, st->element[1]->element[i], 0);
        }
    worker_need_dispatch(f->w);
}

/* The client id of an entry's task, for a dead letter's answer; 0 if it cannot be read. */
static uint64_t entry_client_id(const redis_front *f, const redisReply *fields)
{
    const redisReply *tf = field_of(fields, "task");
    if (!tf || proto_frame_scan((const uint8_t *)tf->str, tf->len, f->w->cfg->max_frame) != (long)tf->len)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t pos = 0;
    uint64_t id = 0;
    if (msgpack_unpack_next(&u, tf->str, tf->len, &pos) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *v = proto_map_get(&u.data, "id");
        if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            id = v->via.u64;
    }
    msgpack_unpacked_destroy(&u);
    return id;
}

/* Entries claimed as dead letters (XCLAIM: [[id, [field, value, ...]], ...]): each client is
 * answered dead_letter and the entry acknowledged, so it is never run again. */
static void dead_reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    (void)priv;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return; /* the connection went away, or an error: still pending, looked at again */
    uint32_t max = f->w->cfg->redis_max_deliveries;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= ENTRY_ID_MAX)
            continue; /* deleted from the stream meanwhile */
        char entry[ENTRY_ID_MAX], reply_to[513];
        memcpy(entry, e->element[0]->str, e->element[0]->len);
        entry[e->element[0]->len] = '\0';
        f->dead++;
        atomic_fetch_add(&f->w->tbl->hdr->c.redis_dead, 1);
        LOGW(&f->w->log, "redis: entry %s was delivered %u times and never answered: answered dead_letter, not run",
             entry, max);
        const redisReply *rf = field_of(e->element[1], "reply_to");
        if (!rf || rf->len == 0 || rf->len >= sizeof reply_to || memchr(rf->str, '\0', rf->len)) {
            ack_entry(f, entry); /* nobody to answer */
            continue;
        }
        memcpy(reply_to, rf->str, rf->len);
        reply_to[rf->len] = '\0';
        char msg[256];
        snprintf(msg, sizeof msg,
                 "stream entry %s was delivered %u times (redis_max_deliveries) and never answered: every worker "
                 "that took it died or stopped before its task ended; it is not run again",
                 entry, max);
        answer_error(f, reply_to, entry, entry_client_id(f, e->element[1]), ERR_DEAD_LETTER, msg);
    }
}

/* Entries taken over from other consumers (XCLAIM: [[id, [field, value, ...]], ...]). */
static void claim_reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    (void)priv;
    f->claiming = 0;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (!f->write_err_logged)
            LOGW(&f->w->log, "redis: XCLAIM failed: %s", r->str);
        f->write_err_logged = 1;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    uint32_t before = (uint32_t)f->claimed;
    for (size_t i = 0; i < r->elements; i++)
        take_entry(f, r->element[i], 1);
    if ((uint32_t)f->claimed != before)
        LOGI(&f->w->log, "redis: claimed %u entries left idle over %u ms by other consumers",
             (uint32_t)f->claimed - before, f->w->cfg->redis_claim_idle_ms);
    worker_need_dispatch(f->w);
}

/* XCLAIM <stream> scatter <consumer> <idle>, the ids to follow: CLAIM_HEAD arguments. */
#define CLAIM_HEAD 5
static int claim_head(const redis_front *f, const char **argv, const char *idle)
{
    argv[0] = "XCLAIM";
    argv[1] = f->w->cfg->redis_stream;
    argv[2] = GROUP;
    argv[3] = f->consumer;
    argv[4] = idle;
    return CLAIM_HEAD;
}

/* XPENDING ... IDLE: [[id, consumer, idle ms, deliveries], ...], the entries idle for
 * redis_claim_idle from the cursor on. Those delivered redis_max_deliveries times already are
 * claimed as dead letters (dead_reply_cb), the others claimed to run (claim_reply_cb): each by
 * its id, so exactly the entries whose count was read are the ones claimed. (XAUTOCLAIM does
 * not report delivery counts.) XCLAIM's own idle check keeps an entry its owner acknowledged
 * or refreshed meanwhile where it is. */
static void pending_reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    uint32_t asked = (uint32_t)(uintptr_t)priv;
    f->claiming = 0;
    if (!r || !wr_usable(f))
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        if (r->type == REDIS_REPLY_ERROR && !f->write_err_logged) {
            LOGW(&f->w->log, "redis: XPENDING failed: %s", r->str);
            f->write_err_logged = 1;
        }
        return;
    }
    char idle[16];
    snprintf(idle, sizeof idle, "%u", f->w->cfg->redis_claim_idle_ms);
    const char *dead[CLAIM_HEAD + CLAIM_MAX], *live[CLAIM_HEAD + CLAIM_MAX];
    int nd = claim_head(f, dead, idle), nl = claim_head(f, live, idle);
    uint32_t max = f->w->cfg->redis_max_deliveries;
    const char *last = NULL;
    for (size_t i = 0; i < r->elements && i < CLAIM_MAX; i++) {
        const redisReply *p = r->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || p->element[0]->type != REDIS_REPLY_STRING ||
            p->element[0]->len >= ENTRY_ID_MAX || p->element[3]->type != REDIS_REPLY_INTEGER)
            continue;
        last = p->element[0]->str;
        /* ours, running (its refresh came late): not a dead letter, and not to be claimed */
        if (p->element[1]->type == REDIS_REPLY_STRING && strcmp(p->element[1]->str, f->consumer) == 0)
            continue;
        if (max && p->element[3]->integer >= (long long)max)
            dead[nd++] = last;
        else
            live[nl++] = last;
    }
    /* the next look starts after the last entry seen, or from the start once the list is done */
    if (last && r->elements >= asked)
        snprintf(f->cursor, sizeof f->cursor, "(%s", last);
    else
        snprintf(f->cursor, sizeof f->cursor, "-");
    if (nd > CLAIM_HEAD && redisAsyncCommandArgv(f->wr, dead_reply_cb, NULL, nd, dead, NULL) == REDIS_OK)
        f->writes++;
    if (nl > CLAIM_HEAD && redisAsyncCommandArgv(f->wr, claim_reply_cb, NULL, nl, live, NULL) == REDIS_OK) {
        f->claiming = 1;
        f->writes++;
    }
}

/* Resets the idle time of our own entries that have run a while, so that a long task is
 * never claimed from a live worker (XCLAIM ... JUSTID neither moves nor counts a delivery). */
static void refresh_own(redis_front *f, uint64_t now)
{
    uint64_t older = f->w->cfg->redis_claim_idle_ms / 3;
    const char *argv[6 + REFRESH_MAX + 1];
    int n = 0;
    argv[n++] = "XCLAIM";
    argv[n++] = f->w->cfg->redis_stream;
    argv[n++] = GROUP;
    argv[n++] = f->consumer;
    argv[n++] = "0";
    int first = n;
    for (rtask *r = f->held; r && n - first < REFRESH_MAX; r = r->next)
        if (r->t && now - r->touched_ms >= older) {
            argv[n++] = r->entry;
            r->touched_ms = now;
        }
    if (n == first)
        return;
    argv[n++] = "JUSTID";
    if (redisAsyncCommandArgv(f->wr, write_cb, "XCLAIM (refresh)", n, argv, NULL) == REDIS_OK)
        f->writes++;
}

/* Deletes the consumers of the group, other than ARGV[2], with nothing pending and idle for
 * ARGV[3] ms; returns how many. One script, so that nothing is delivered to a consumer between
 * the look at its pending count and its deletion (its pending entries would go with it). */
static const char FORGET_SCRIPT[] =
    "local n = 0\n"
    "for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local c = {}\n"
    "  for i = 1, #row, 2 do c[row[i]] = row[i + 1] end\n"
    "  if c['name'] ~= ARGV[2] and c['pending'] == 0 and c['idle'] >= tonumber(ARGV[3]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

/* The group gains a consumer per worker process that ever got an entry. Those with nothing
 * pending and idle for redis_forget_consumers are deleted: mostly processes that are gone;
 * a live one that got nothing for that long is made again by Redis with its next entry. */
static void forget_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    (void)priv;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        LOGI(&f->w->log, "redis: forgot %lld consumers idle over %u ms with nothing pending", r->integer,
             f->w->cfg->redis_forget_consumers_ms);
    else if (r && r->type == REDIS_REPLY_ERROR && !f->write_err_logged) {
        LOGW(&f->w->log, "redis: forgetting idle consumers failed: %s", r->str);
        f->write_err_logged = 1;
    }
}

static void claim_tick(struct ev_loop *loop, ev_timer *tw, int revents)
{
    redis_front *f = tw->data;
    if (!wr_usable(f) || f->stopping)
        return;
    uint64_t now = shm_now_ms();
    /* a Redis that stopped answering (a stopped process, a cut link) closes nothing: a read
     * blocked far past its BLOCK time means the connection is dead */
    if (f->reading && now - f->read_since_ms > 1000 + READ_STALL_MS) {
        go_down(f, "no answer to XREADGROUP");
        return;
    }
    refresh_own(f, now);
    uint32_t forget = f->w->cfg->redis_forget_consumers_ms;
    if (forget && f->group_ready && now >= f->sweep_at_ms) {
        f->sweep_at_ms = now + (forget / 2 < SWEEP_MAX_MS ? forget / 2 : SWEEP_MAX_MS);
        char ms[16];
        snprintf(ms, sizeof ms, "%u", forget);
        const char *argv[] = {"EVAL", FORGET_SCRIPT, "1", f->w->cfg->redis_stream, GROUP, f->consumer, ms};
        if (redisAsyncCommandArgv(f->wr, forget_cb, NULL, 7, argv, NULL) == REDIS_OK)
            f->writes++;
    }
    uint32_t n = room(f);
    if (f->claiming || n == 0 || !f->group_ready)
        return;
    if (n > CLAIM_MAX)
        n = CLAIM_MAX;
    char idle[16], count[16];
    snprintf(idle, sizeof idle, "%u", f->w->cfg->redis_claim_idle_ms);
    snprintf(count, sizeof count, "%u", n);
    const char *argv[] = {"XPENDING", f->w->cfg->redis_stream, GROUP, "IDLE", idle, f->cursor, "+", count};
    if (redisAsyncCommandArgv(f->wr, pending_reply_cb, (void *)(uintptr_t)n, 8, argv, NULL) == REDIS_OK) {
        f->claiming = 1;
        f->writes++;
    }
}

static void room_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    (void)tw; /* only wakes the loop: redis_front_poll runs before it sleeps again */
}

void redis_front_poll(worker_ctx *w)
{
    redis_front *f = w->redis;
    if (!f || f->state != R_UP || f->reading || f->stopping || !f->group_ready || !f->rd)
        return;
    uint32_t n = room(f);
    if (n == 0) {
        /* room opens when any worker's task ends; ours call us, others' do not */
        if (!ev_is_active(&f->room_w)) {
            ev_timer_set(&f->room_w, 0.05, 0.);
            ev_timer_start(w->loop, &f->room_w);
        }
        return;
    }
    char count[16];
    snprintf(count, sizeof count, "%u", n);
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP, f->consumer, "COUNT", count, "BLOCK", BLOCK_MS,
                          "STREAMS", w->cfg->redis_stream, ">"};
    if (redisAsyncCommandArgv(f->rd, read_cb, NULL, 11, argv, NULL) == REDIS_OK) {
        f->reading = 1;
        f->read_since_ms = shm_now_ms();
    }
}

/* ---- connection state ---- */

static void free_ctx(redis_front *f, redisAsyncContext **pac)
{
    redisAsyncContext *ac = *pac;
    if (!ac)
        return;
    *pac = NULL;
    /* pending callbacks run with a NULL reply; the disconnect callback finds *pac cleared */
    redisAsyncFree(ac);
}

static void schedule_retry(redis_front *f)
{
    if (f->stopping || ev_is_active(&f->retry_w))
        return;
    ev_timer_set(&f->retry_w, f->backoff_ms / 1000.0, 0.);
    ev_timer_start(f->w->loop, &f->retry_w);
    f->backoff_ms = f->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : f->backoff_ms * 2;
}

static void go_down(redis_front *f, const char *why)
{
    if (f->state == R_DOWN && !f->rd && !f->wr) {
        schedule_retry(f);
        return;
    }
    int was = f->state;
    if (was == R_UP)
        atomic_store(&f->w->tbl->hdr->workers[f->w->index - 1].redis_up, 0u);
    f->state = R_DOWN;
    f->rd_ready = f->wr_ready = f->group_ready = 0;
    f->reading = f->claiming = 0;
    f->writes = 0;
    if (!f->down_logged) {
        if (was == R_UP)
            LOGW(&f->w->log, "redis: connection to %s:%d lost (%s); %u stream tasks keep running, local clients "
                             "are served; reconnecting with backoff", f->url.host, f->url.port, why, f->n_held);
        else
            LOGW(&f->w->log, "redis: cannot connect to %s:%d (%s); retrying with backoff up to %u s", f->url.host,
                 f->url.port, why, BACKOFF_MAX_MS / 1000);
        f->down_logged = 1;
    }
    free_ctx(f, &f->rd);
    free_ctx(f, &f->wr);
    ev_timer_stop(f->w->loop, &f->claim_w);
    schedule_retry(f);
}

static void check_up(redis_front *f)
{
    if (f->state == R_UP || !f->rd_ready || !f->wr_ready)
        return;
    f->state = R_UP;
    atomic_store(&f->w->tbl->hdr->workers[f->w->index - 1].redis_up, 1u);
    f->backoff_ms = BACKOFF_MIN_MS;
    f->write_err_logged = 0;
    LOGI(&f->w->log, "redis: %s %s:%d, stream %s, consumer %s", f->was_up ? "reconnected to" : "connected to",
         f->url.host, f->url.port, f->w->cfg->redis_stream, f->consumer);
    f->was_up = 1;
    f->down_logged = 0;
    /* every half redis_claim_idle, or more often if forgetting consumers asks for it */
    uint32_t every_ms = f->w->cfg->redis_claim_idle_ms / 2, forget = f->w->cfg->redis_forget_consumers_ms;
    if (forget && forget / 2 < every_ms)
        every_ms = forget / 2;
    double every = every_ms / 1000.0;
    ev_timer_set(&f->claim_w, every, every);
    ev_timer_start(f->w->loop, &f->claim_w);
    worker_need_dispatch(f->w);
}

static void group_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = answered_on_wr(ac);
    redisReply *r = reply;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        go_down(f, r->str);
        return;
    }
    f->group_ready = 1;
    f->wr_ready = 1;
    check_up(f);
}

static void setup_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_front *f = ac->data;
    redisReply *r = reply;
    if (ac == f->wr && f->writes)
        f->writes--;
    if (r && r->type == REDIS_REPLY_ERROR) {
        char why[200];
        snprintf(why, sizeof why, "%s: %s", (const char *)priv, r->str);
        go_down(f, why);
        return;
    }
    if (r && ac == f->rd && strcmp((const char *)priv, "PING") == 0) {
        f->rd_ready = 1;
        check_up(f);
    }
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
    redis_front *f = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        if (ac == f->rd)
            f->rd = NULL;
        else if (ac == f->wr)
            f->wr = NULL;
        go_down(f, ac->errstr[0] ? ac->errstr : "connect failed");
    }
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    redis_front *f = ac->data;
    int ours = 0;
    if (ac == f->rd) {
        f->rd = NULL;
        ours = 1;
    } else if (ac == f->wr) {
        f->wr = NULL;
        ours = 1;
    }
    if (ours) /* not one we freed ourselves */
        go_down(f, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "connection error"));
}

static redisAsyncContext *open_one(redis_front *f, int writer)
{
    redisAsyncContext *ac = redisAsyncConnect(f->addr, f->url.port);
    if (!ac)
        return NULL;
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        go_down(f, why);
        return NULL;
    }
    ac->data = f;
    redisLibevAttach(f->w->loop, ac);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    if (f->url.password[0]) {
        const char *argv[] = {"AUTH", f->url.password};
        redisAsyncCommandArgv(ac, setup_cb, "AUTH", 2, argv, NULL);
        if (writer)
            f->writes++;
    }
    if (f->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%u", f->url.db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, setup_cb, "SELECT", 2, argv, NULL);
        if (writer)
            f->writes++;
    }
    if (writer) {
        /* from id 0: tasks added before any instance made the group are read too (entries
         * are deleted once answered, so the stream holds only work still to do) */
        const char *argv[] = {"XGROUP", "CREATE", f->w->cfg->redis_stream, GROUP, "0", "MKSTREAM"};
        redisAsyncCommandArgv(ac, group_cb, NULL, 6, argv, NULL);
        f->writes++;
    } else {
        redisAsyncCommand(ac, setup_cb, "PING", "PING");
    }
    return ac;
}

static void connect_both(redis_front *f)
{
    f->state = R_CONNECTING;
    f->rd = open_one(f, 0);
    if (f->state == R_DOWN)
        return;
    f->wr = open_one(f, 1);
    if (!f->rd || !f->wr)
        go_down(f, "out of memory");
}

static void retry_cb(struct ev_loop *loop, ev_timer *tw, int revents)
{
    redis_front *f = tw->data;
    if (!f->stopping && f->state == R_DOWN)
        connect_both(f);
}

/* ---- lifecycle ---- */

int redis_front_start(worker_ctx *w)
{
    if (!w->cfg->redis_url[0])
        return 0;
    redis_front *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->w = w;
    f->owner.ops = &REDIS_TASK_OPS;
    f->owner.w = w;
    char why[160];
    if (redis_url_parse(w->cfg->redis_url, &f->url, why, sizeof why)) {
        LOGE(&w->log, "redis_url: %s", why); /* the config check refuses this first */
        free(f);
        return -1;
    }
    /* resolved once, before the loop runs: a name lookup would block the loop */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(f->url.host, NULL, &hints, &ai);
    if (rc || !ai) {
        LOGE(&w->log, "redis: cannot resolve '%s': %s; the stream is off in this worker until it restarts",
             f->url.host, gai_strerror(rc));
        free(f);
        return -1;
    }
    const void *a = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                              : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, a, f->addr, sizeof f->addr);
    freeaddrinfo(ai);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(f->consumer, sizeof f->consumer, "%s:%d:w%u", host, (int)getpid(), w->index);
    snprintf(f->cursor, sizeof f->cursor, "-");
    f->backoff_ms = BACKOFF_MIN_MS;
    ev_init(&f->retry_w, retry_cb);
    f->retry_w.data = f;
    ev_init(&f->claim_w, claim_tick);
    f->claim_w.data = f;
    ev_init(&f->room_w, room_cb);
    f->room_w.data = f;
    w->redis = f;
    connect_both(f);
    return 0;
}

void redis_front_stop(worker_ctx *w)
{
    redis_front *f = w->redis;
    if (!f || f->stopping)
        return;
    f->stopping = 1;
    ev_timer_stop(w->loop, &f->claim_w);
    ev_timer_stop(w->loop, &f->retry_w);
    ev_timer_stop(w->loop, &f->room_w);
}

void redis_front_abandon(worker_ctx *w)
{
    if (w->redis)
        task_owner_cancel_all(&w->redis->owner, ERR_SHUTTING_DOWN, "the daemon stopped before the task finished");
}

int redis_front_busy(const worker_ctx *w)
{
    const redis_front *f = w->redis;
    return f && f->state == R_UP && f->writes > 0;
}

void redis_front_free(worker_ctx *w)
{
    redis_front *f = w->redis;
    if (!f)
        return;
    f->stopping = 1;
    task_owner_cancel_all(&f->owner, ERR_SHUTTING_DOWN, "the daemon stopped before the task finished");
    ev_timer_stop(w->loop, &f->claim_w);
    ev_timer_stop(w->loop, &f->retry_w);
    ev_timer_stop(w->loop, &f->room_w);
    atomic_store(&w->tbl->hdr->workers[w->index - 1].redis_up, 0u);
    f->state = R_DOWN;
    f->down_logged = 1;
    free_ctx(f, &f->rd);
    free_ctx(f, &f->wr);
    ev_timer_stop(w->loop, &f->retry_w); /* go_down from a callback above may have armed it */
    while (f->held)
        held_drop(f, f->held);
    LOGI(&w->log, "redis: %llu entries read, %llu claimed, %llu answered, %llu left pending, %llu malformed, "
                  "%llu dead letters",
         (unsigned long long)f->taken, (unsigned long long)f->claimed, (unsigned long long)f->answered,
         (unsigned long long)f->dropped, (unsigned long long)f->bad, (unsigned long long)f->dead);
    w->redis = NULL;
    free(f);
}

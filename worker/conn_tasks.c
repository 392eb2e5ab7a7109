/*
 * A msgpack connection as the owner of its tasks: the submit and cancel ops, the client's ids
 * (unique among its live tasks), and results and failures packed as submit replies
 * (docs/PROTOCOL.md section 4.2). The task layer knows none of this.
 */
#include "worker/conn.h"

#include <string.h>

static conn *conn_of(task_owner *o)
{
    return (conn *)o; /* the owner is a conn's first member */
}

/* Splits the raw header block of the final response into [name, value] pairs. */
static void pack_headers(msgpack_packer *pk, const char *p, size_t len)
{
    const char *end = p + len;
    uint32_t pairs = 0;
    int first = 1; /* the status line */
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        if (!first && memchr(line, ':', (size_t)(nl - line)))
            pairs++;
        first = 0;
        line = nl + 1;
    }
    msgpack_pack_array(pk, pairs);
    first = 1;
    for (const char *line = p; line < end && pairs;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        const char *colon = first ? NULL : memchr(line, ':', (size_t)(nl - line));
        first = 0;
        if (colon) {
            const char *v = colon + 1, *ve = nl;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            msgpack_pack_array(pk, 2);
            proto_pack_strn(pk, line, (size_t)(colon - line));
            proto_pack_strn(pk, v, (size_t)(ve - v));
            pairs--;
        }
        line = nl + 1;
    }
}

void task_pack_result(proto_map *m, const task_result *r)
{
    proto_map_u64(m, "status", (uint64_t)r->status);
    pack_headers(proto_map_key(m, "headers"), r->headers ? r->headers : "", r->headers_len);
    proto_map_bin(m, "body", r->body, r->body_len);
    proto_map_str(m, "proxy", r->proxy);
    proto_map_u64(m, "attempts", r->attempts);
    proto_map_u64(m, "race", r->race);
    proto_map_u64(m, "latency_ms", r->latency_ms);
    proto_map_u64(m, "elapsed_ms", r->elapsed_ms);
}

void task_pack_failure(proto_map *m, const task_failure *f)
{
    proto_map_str(m, "error", err_code(f->code));
    proto_map_str(m, "message", f->message);
    proto_map_str(m, "host", f->host);
    proto_map_u64(m, "attempts", f->attempts);
    proto_map_str(m, "last_error", f->last_error);
    proto_map_u64(m, "elapsed_ms", f->elapsed_ms);
}

static void deliver_result(task_owner *o, task *t, const task_result *r)
{
    conn_reply rp;
    conn_reply_begin(&rp, t->id, "submit", 1);
    task_pack_result(&rp.m, r);
    conn_reply_end(conn_of(o), &rp);
}

static void deliver_failure(task_owner *o, task *t, const task_failure *f)
{
    conn_reply rp;
    conn_reply_begin(&rp, t->id, "submit", 0);
    task_pack_failure(&rp.m, f);
    conn_reply_end(conn_of(o), &rp); /* dropped if the connection is closing */
}

static void forget(task_owner *o, task *t)
{
    idmap_del(&conn_of(o)->ids, t->id);
}

static int backlogged(const task_owner *o)
{
    return conn_backlogged((const conn *)o);
}

static const task_owner_ops CONN_TASK_OPS = {
    .deliver_result = deliver_result,
    .deliver_failure = deliver_failure,
    .forget = forget,
    .backlogged = backlogged,
};

void conn_tasks_init(conn *c)
{
    c->owner.ops = &CONN_TASK_OPS;
    c->owner.w = c->w;
}

void conn_submit(conn *c, const proto_request *r)
{
    char err[400];
    if (idmap_get(&c->ids, r->id)) {
        conn_send_error(c, r->id, "submit", ERR_BAD_REQUEST, "id %llu is already a live task on this connection",
                        (unsigned long long)r->id);
        return;
    }
    task_submission s = task_submission_of(r, r->id);
    task *t;
    scatter_err e = task_submit(&c->owner, &s, &t, err, sizeof err);
    if (e != ERR_OK) {
        conn_send_error(c, r->id, "submit", e, "%s", err);
        return;
    }
    if (idmap_put(&c->ids, t) != 0)
        task_finish_error(t, ERR_INTERNAL, "out of memory indexing the task");
}

void conn_cancel(conn *c, uint64_t id)
{
    task *t = idmap_get(&c->ids, id);
    if (t)
        task_finish_error(t, ERR_CANCELLED, "cancelled by the client");
}

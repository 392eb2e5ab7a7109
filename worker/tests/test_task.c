/* The task layer fed by a front end that is not msgpack: a fake owner submits, the layer
 * validates (refusals come back as codes, nothing created), owns, and on cancel delivers one
 * failure per task and returns the pool, the worker's owed row and its host live bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "shm/registry.h"
#include "worker/task.h"

typedef struct {
    task_owner owner;
    int results, failures, forgotten, backlog;
    scatter_err last_code;
} fake_owner;

static void f_result(task_owner *o, task *t, const task_result *r) { ((fake_owner *)o)->results++; }
static void f_failure(task_owner *o, task *t, const task_failure *f)
{
    fake_owner *fo = (fake_owner *)o;
    fo->failures++;
    fo->last_code = f->code;
    assert_non_null(f->message);
    assert_non_null(f->host);
}
static void f_forget(task_owner *o, task *t) { ((fake_owner *)o)->forgotten++; }
static int f_backlogged(const task_owner *o) { return ((const fake_owner *)o)->backlog; }
static const task_owner_ops FAKE = {f_result, f_failure, f_forget, f_backlogged};

typedef struct {
    worker_ctx w;
    scatter_config cfg;
    shm_table tbl;
    fake_owner fo;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    cfg_defaults(&e->cfg);
    e->cfg.pool_capacity = 3;
    assert_int_equal(shm_create(&e->tbl, 16, 4), 0);
    worker_ctx *w = &e->w;
    w->index = 1;
    w->cfg = &e->cfg;
    w->tbl = &e->tbl;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    w->hosts = calloc(4, sizeof *w->hosts);
    log_init(&w->log, LOG_ERROR, LOG_TEXT, open("/dev/null", O_WRONLY), "test", 0);
    e->fo.owner.ops = &FAKE;
    e->fo.owner.w = w;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    for (uint32_t i = 0; i < 4; i++)
        if (e->w.hosts[i])
            sched_host_free(e->w.hosts[i]);
    free(e->w.hosts);
    ev_loop_destroy(e->w.loop);
    close(e->w.log.fd);
    shm_destroy(&e->tbl);
    free(e);
    return 0;
}

#define STR(s) ((proto_str){(s), (uint32_t)strlen(s)})

static scatter_err submit(env *e, const char *url, const proto_str *hn, const proto_str *hv, uint32_t nh, task **t,
                     char *err)
{
    static uint64_t id = 1;
    task_submission s = {.id = id++, .url = STR(url), .method = STR("GET"), .n_headers = nh, .hname = hn, .hval = hv};
    return task_submit(&e->fo.owner, &s, t, err, 400);
}

static void refusals_create_nothing(void **state)
{
    env *e = *state;
    task *t;
    char err[400];
    assert_int_equal(submit(e, "ftp://a.example/", NULL, NULL, 0, &t, err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err, "scheme"));
    assert_int_equal(submit(e, "http:///x", NULL, NULL, 0, &t, err), ERR_BAD_REQUEST);
    proto_str hn[] = {STR("Host")}, hv[] = {STR("evil.example")};
    assert_int_equal(submit(e, "http://a.example/", hn, hv, 1, &t, err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err, "Host: evil.example"));
    char big[9000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "http://a.example/", 17);
    assert_int_equal(submit(e, big, NULL, NULL, 0, &t, err), ERR_TOO_LARGE);
    task_submission bad = {.id = 9, .url = STR("http://a.example/"), .method = STR("get")};
    assert_int_equal(task_submit(&e->fo.owner, &bad, &t, err, sizeof err), ERR_BAD_REQUEST);
    assert_null(t);
    /* nothing was created, nothing registered, nothing counted */
    assert_int_equal(e->fo.owner.n_tasks, 0);
    assert_int_equal(atomic_load(&e->tbl.hdr->n_hosts), 0);
    assert_int_equal(atomic_load(&e->tbl.hdr->c.pending), 0);
    assert_int_equal(e->fo.failures + e->fo.results, 0);
}

static void owner_gone_cancels_and_returns_everything(void **state)
{
    env *e = *state;
    task *t;
    char err[400];
    proto_str hn[] = {STR("Content-Length"), STR("Accept"), STR("Connection"), STR("X-Drop")};
    proto_str hv[] = {STR("0"), STR("text/html"), STR("keep-alive, X-Drop"), STR("1")};
    assert_int_equal(submit(e, "http://a.example/1", hn, hv, 4, &t, err), ERR_OK);
    /* only the end-to-end header is sent */
    assert_non_null(t->headers);
    assert_string_equal(t->headers->data, "Accept: text/html");
    assert_null(t->headers->next);
    assert_int_equal(submit(e, "http://a.example/2", NULL, NULL, 0, &t, err), ERR_OK);
    assert_int_equal(submit(e, "http://b.example/", NULL, NULL, 0, &t, err), ERR_OK);
    assert_int_equal(submit(e, "http://b.example/4", NULL, NULL, 0, &t, err), ERR_POOL_FULL);
    assert_int_equal(e->fo.owner.n_tasks, 3);
    shm_header *h = e->tbl.hdr;
    assert_int_equal(atomic_load(&h->c.pending), 3);
    assert_int_equal(atomic_load(&h->workers[0].owed_pending), 3);
    uint32_t a = reg_host_find(&e->tbl, "a.example");
    assert_int_equal(atomic_load(&e->tbl.hosts[a].live_workers), 1);
    /* the host's interval is the master's to write (shm/README.md), even for a host a worker
     * registered: the worker uses its own config's interval plus margin */
    assert_int_equal(atomic_load(&e->tbl.hosts[a].interval_ms), 0);
    task_owner_cancel_all(&e->fo.owner, ERR_CANCELLED, "client disconnected");
    assert_int_equal(e->fo.failures, 3);
    assert_int_equal(e->fo.last_code, ERR_CANCELLED);
    assert_int_equal(e->fo.forgotten, 3);
    assert_int_equal(e->fo.owner.n_tasks, 0);
    assert_null(e->fo.owner.tasks);
    assert_int_equal(atomic_load(&h->c.pending), 0);
    assert_int_equal(atomic_load(&h->workers[0].owed_pending), 0);
    assert_int_equal(atomic_load(&e->tbl.hosts[a].live_workers), 0);
    assert_int_equal(e->w.n_tasks, 0);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(refusals_create_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(owner_gone_cancels_and_returns_everything, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}

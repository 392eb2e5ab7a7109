#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "common/config.h"
#include "common/redis_url.h"

static char path[64];

static int load_text(scatter_config *c, const char *text, char *err, size_t cap)
{
    snprintf(path, sizeof path, "/tmp/scatter-cfg-test-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    int rc = cfg_load(c, path, err, cap);
    unlink(path);
    return rc;
}

/* shard = K/N and redis_url: good values load, bad ones name the file, line, key and value,
 * and neither changes on a reload (the instance's shard and stream are fixed at start). */
static void shard_and_redis_keys(void **s)
{
    (void)s;
    scatter_config *c = cfg_alloc(), *d = cfg_alloc(), *o = cfg_alloc();
    char err[512], fixed[256];
    assert_int_equal(load_text(c, "[scatter]\nsources = \"\"\n", err, sizeof err), 0);
    assert_int_equal(c->shard[0], 0);
    assert_int_equal(c->shard[1], 1);
    assert_string_equal(c->redis_url, "");
    assert_string_equal(c->redis_stream, "scatter:tasks");
    assert_int_equal(load_text(c, "[scatter]\nshard = 1/2\nredis_url = redis://127.0.0.1:6390/3\n", err, sizeof err), 0);
    assert_int_equal(c->shard[0], 1);
    assert_int_equal(c->shard[1], 2);
    static const char *const bad[] = {"2/2", "0/0", "1", "a/2", "1/2x", "-1/2", "0/65537"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128], want[128];
        snprintf(text, sizeof text, "[scatter]\n\nshard = %s\n", bad[i]);
        assert_int_not_equal(load_text(d, text, err, sizeof err), 0);
        snprintf(want, sizeof want, ":3: [scatter] shard = '%s': expected K/N", bad[i]);
        if (!strstr(err, want))
            fail_msg("%s: %s", bad[i], err);
    }
    assert_int_not_equal(load_text(d, "[scatter]\nredis_url = http://x\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "redis_url = 'http://x': expected redis://"));
    assert_int_not_equal(load_text(d, "[scatter]\nredis_url = redis://h:99999\n", err, sizeof err), 0);
    assert_non_null(strstr(err, "port"));
    assert_int_not_equal(load_text(d, "[scatter]\nredis_url = redis://:hunter2@h:0\n", err, sizeof err), 0);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "redis://***@h:0"));
    assert_int_equal(load_text(d, "[scatter]\nshard = 0/3\nredis_url = redis://10.0.0.1\n", err, sizeof err), 0);
    int n = cfg_reload_merge(c, d, o, fixed, sizeof fixed);
    assert_true(n >= 2);
    assert_int_equal(o->shard[0], 1);
    assert_int_equal(o->shard[1], 2);
    assert_string_equal(o->redis_url, "redis://127.0.0.1:6390/3");
    assert_non_null(strstr(fixed, "shard"));
    assert_non_null(strstr(fixed, "redis_url"));
    cfg_free(c);
    cfg_free(d);
    cfg_free(o);
}

static void redis_urls(void **s)
{
    (void)s;
    redis_url u;
    char why[160];
    assert_int_equal(redis_url_parse("redis://10.0.0.5", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.password, "");
    assert_int_equal(u.db, 0);
    assert_int_equal(redis_url_parse("redis://user:s3cr@t@db.example:6380/2", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "db.example");
    assert_string_equal(u.password, "s3cr@t");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_int_equal(redis_url_parse("redis://[::1]:7000", &u, why, sizeof why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    static const char *const bad[] = {"rediss://h", "redis://", "redis://h:0", "redis://h:x", "redis://pw@h",
                                      "redis://[::1", "redis://h/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (redis_url_parse(bad[i], &u, why, sizeof why) == 0)
            fail_msg("%s was accepted", bad[i]);
    /* the shard hash is part of the configuration's meaning: it must never change */
    assert_true(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
}

static void defaults_are_documented_values(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    assert_int_equal(c->defaults.race_width, 3);
    assert_int_equal(c->defaults.max_attempts, 5);
    assert_int_equal(c->defaults.task_timeout_ms, 60000);
    assert_int_equal(c->defaults.interval_ms, 1000);
    assert_int_equal(c->defaults.cooldown_base_ms, 30000);
    assert_int_equal(c->defaults.cooldown_max_ms, 300000);
    assert_int_equal(c->defaults.eviction_min_samples, 30);
    assert_int_equal(c->defaults.circuit_breaker_threshold, 10);
    assert_int_equal(c->health_window, 30);
    assert_int_equal(c->score_affinity, 500);
    assert_int_equal(c->score_global, 300);
    assert_int_equal(c->score_recency, 200);
    assert_int_equal(c->socket_mode, 0660);
    assert_int_equal(c->max_frame, 4 * 1024 * 1024);
    assert_int_equal(c->shutdown_grace_ms, 10000);
    assert_int_equal(c->source_refresh_interval_ms, 600000);
    free(c);
}

static void shipped_ini_loads_and_matches_defaults(void **s)
{
    (void)s;
    const char *src = getenv("SCATTER_SRC");
    if (!src)
        skip();
    char p[1024], err[512];
    snprintf(p, sizeof p, "%s/scatter.ini", src);
    scatter_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    int rc = cfg_load(a, p, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    cfg_defaults(b);
    snprintf(b->path, sizeof b->path, "%s", p);
    assert_int_equal(cfg_resolve_paths(b, (unsigned)geteuid(), getenv("XDG_RUNTIME_DIR"), err, sizeof err), 0);
    char buf[256];
    scatter_config *m = malloc(sizeof *m);
    assert_int_equal(cfg_reload_merge(a, b, m, buf, sizeof buf), 0);
    free(m);
    free(a);
    free(b);
}

/* A reload keeps every key the table marks fixed at start and takes every other one, host
 * sections included; it names exactly the keys it kept back. */
static void reload_merge_follows_the_table(void **s)
{
    (void)s;
    scatter_config *run = malloc(sizeof *run), *fresh = malloc(sizeof *fresh), *out = malloc(sizeof *out);
    cfg_defaults(run);
    cfg_defaults(fresh);
    fresh->pool_capacity = run->pool_capacity + 1;          /* fixed at start */
    snprintf(fresh->socket_path, sizeof fresh->socket_path, "/elsewhere.sock"); /* fixed */
    fresh->max_inflight = run->max_inflight + 1;            /* reloadable */
    fresh->defaults.race_width = run->defaults.race_width + 1; /* per host, reloadable */
    fresh->n_hosts = 1;
    snprintf(fresh->hosts[0].name, sizeof fresh->hosts[0].name, "a.example");
    fresh->hosts[0] = fresh->defaults;
    snprintf(fresh->hosts[0].name, sizeof fresh->hosts[0].name, "a.example");
    char fixed[256];
    assert_int_equal(cfg_reload_merge(run, fresh, out, fixed, sizeof fixed), 2);
    assert_non_null(strstr(fixed, "pool_capacity"));
    assert_non_null(strstr(fixed, "socket_path"));
    assert_int_equal(out->pool_capacity, run->pool_capacity);
    assert_string_equal(out->socket_path, run->socket_path);
    assert_int_equal(out->max_inflight, fresh->max_inflight);
    assert_int_equal(out->defaults.race_width, fresh->defaults.race_width);
    assert_int_equal(out->n_hosts, 1);
    assert_string_equal(out->hosts[0].name, "a.example");
    /* every key is either reloadable or kept: count both kinds from the table */
    int n = cfg_key_count(), fixed_keys = 0;
    assert_true(n > 40);
    for (int i = 0; i < n; i++) {
        assert_non_null(cfg_key_name(i));
        fixed_keys += !cfg_key_reloadable(i);
    }
    assert_true(fixed_keys >= 2);
    assert_null(cfg_key_name(n));
    free(run);
    free(fresh);
    free(out);
}

static void print_default_config_round_trips(void **s)
{
    (void)s;
    scatter_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    cfg_defaults(a);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    cfg_print(a, m, 0);
    fclose(m);
    char err[512];
    int rc = load_text(b, text, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_memory_equal(&a->defaults.race_width, &b->defaults.race_width, sizeof(uint32_t));
    assert_string_equal(a->user_agent, b->user_agent);
    assert_int_equal(a->defaults.interval_ms, b->defaults.interval_ms);
    free(text);
    free(a);
    free(b);
}

static void values_units_and_host_overrides(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    char err[512];
    int rc = load_text(c,
                       "[scatter]\nrace_width = 2\ntask_timeout = 1500ms\nmax_frame = 64K\n"
                       "sources = \"a=/tmp/x.txt, http://example.com/p.txt;x\"\n"
                       "blocked_body = \"captcha|denied\"\nremote_dns = no\nscore_jitter = 5%\n"
                       "[rate_limit]\ninterval = 2s\n"
                       "[host:Example.com]\ninterval = 250\nrace_width = 4\nsources = a\n",
                       err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c->defaults.race_width, 2);
    assert_int_equal(c->defaults.task_timeout_ms, 1500);
    assert_int_equal(c->max_frame, 65536);
    assert_string_equal(c->sources, "a=/tmp/x.txt, http://example.com/p.txt;x");
    assert_string_equal(c->defaults.blocked_body, "captcha|denied");
    assert_int_equal(c->remote_dns, 0);
    assert_int_equal(c->score_jitter, 50);
    assert_int_equal(c->defaults.interval_ms, 2000);
    assert_int_equal(c->n_hosts, 1);
    const cfg_host *h = cfg_host_for(c, "example.com");
    assert_string_equal(h->name, "example.com");
    assert_int_equal(h->interval_ms, 250);
    assert_int_equal(h->race_width, 4);
    assert_int_equal(h->task_timeout_ms, 1500); /* inherited */
    assert_string_equal(h->sources, "a");
    assert_ptr_equal(cfg_host_for(c, "other.org"), &c->defaults);
    free(c);
}

static void expect_error(const char *text, const char *needle)
{
    scatter_config *c = malloc(sizeof *c);
    char err[512] = "";
    int rc = load_text(c, text, err, sizeof err);
    free(c);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    if (!strstr(err, needle))
        fail_msg("error '%s' lacks '%s'", err, needle);
}

/* iniparser calls a key "section:key": [host:a:8443] beside [host:a] must keep both sections'
 * keys apart, and a section named like a key of another is refused instead of read as a key
 * with no value (found by fuzz_config: a NULL value reached the parsers). */
static void host_sections_with_ports(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    char err[512];
    int rc = load_text(c, "[scatter]\n[host:example.com]\ninterval = 2000\n[host:example.com:8443]\ninterval = 3000\n",
                       err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(c->n_hosts, 2);
    assert_int_equal(cfg_host_for(c, "example.com")->interval_ms, 2000);
    assert_int_equal(cfg_host_for(c, "example.com:8443")->interval_ms, 3000);
    free(c);
    expect_error("[scatter]\n[host:a.example]\ninterval = 2000\n[host:a.example:interval]\nrace_width = 2\n",
                 "section [host:a.example:interval] has the same name as key 'interval' of [host:a.example]");
}

static void bad_input_names_key_line_value(void **s)
{
    (void)s;
    expect_error("[scatter]\nrace_widht = 3\n", ":2: [scatter] unknown key 'race_widht'");
    expect_error("[scatter]\n\nrace_width = abc\n", ":3: [scatter] race_width = 'abc': expected an integer");
    expect_error("[scatter]\nrace_width = 0\n", "race_width = '0': out of range");
    expect_error("[scatter]\nworkers = -1\n", "workers = '-1'");
    expect_error("[scatter]\ntask_timeout = 5 parsecs\n", "task_timeout = '5 parsecs'");
    expect_error("[scatter]\nremote_dns = maybe\n", "remote_dns = 'maybe': expected true or false");
    expect_error("[scatter]\nsuccess_status = 2xx,700\n", "success_status");
    expect_error("[scatter]\nsources = http://a/b;c\n", ":2: [scatter] sources: unquoted value contains ';'");
    expect_error("[bogus]\na = 1\n", "unknown section [bogus]");
    expect_error("[scatter]\ninterval = 5\n", "the default interval belongs in [rate_limit]");
    expect_error("[host:x.com]\nworkers = 2\n", "[host:x.com] unknown key 'workers'");
    expect_error("[scatter]\nrace_width_min = 4\nrace_width = 3\n", "race_width (3) is outside");
    expect_error("[scatter]\nsocket_mode = 999\n", "socket_mode = '999'");
    expect_error("race_width = 3\n", "outside any section");
    expect_error("[scatter]\njust words\n", ":2: expected 'key = value'");
    expect_error("[scatter]\nmax_frame = 010x\n", "max_frame = '010x'");
}

/* metrics_listen shows every host name and counter: loopback only unless http_auth guards
 * it, never the front end's own port, and off when empty. */
static void metrics_listen_is_checked(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    cfg_defaults(c);
    assert_string_equal(c->metrics_listen, "127.0.0.1:9118");
    assert_int_equal(c->health_degraded_rate, 500);
    char err[512];
    if (load_text(c, "[scatter]\nmetrics_listen = \"\"\nhealth_degraded_rate = 0.9\n", err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(c->metrics_listen, "");
    assert_int_equal(c->health_degraded_rate, 900);
    if (load_text(c, "[scatter]\nmetrics_listen = \"0.0.0.0:9118\"\nhttp_auth = \"u:p\"\n", err, sizeof err))
        fail_msg("%s", err);
    free(c);
    expect_error("[scatter]\nmetrics_listen = \"0.0.0.0:9118\"\n",
                 "metrics_listen = '0.0.0.0:9118' is not a loopback address: set http_auth");
    expect_error("[scatter]\nmetrics_listen = \"localhost\"\n", "metrics_listen = 'localhost': expected IP:port");
    expect_error("[scatter]\nmetrics_listen = \"127.0.0.1:8118\"\n", "is also http_listen");
    expect_error("[scatter]\nhealth_degraded_rate = 2\n", "health_degraded_rate = '2'");
}

/* An empty or binary file used to load as "every default" (and a SIGHUP with it emptied the
 * sources): it must be refused, naming the file. */
static void empty_or_binary_file_is_an_error(void **s)
{
    (void)s;
    expect_error("", "no [scatter] section");
    expect_error("\n\n; only a comment\n", "no [scatter] section");
    expect_error("[rate_limit]\ninterval = 5\n", "no [scatter] section");
    expect_error("[scatter]\n", "no recognised key");
    expect_error("[scatter]\n[rate_limit]\n", "no recognised key");
    expect_error("[scatter]\n\0\x01\x02" "binary", "no recognised key"); /* the NUL ends the C string */
    expect_error("[scatter]\n", "/tmp/scatter-cfg-test-"); /* the message names the file */
    /* a NUL inside the file: refused with its line, not cut off there */
    scatter_config *c = malloc(sizeof *c);
    char err[512] = "";
    snprintf(path, sizeof path, "/tmp/scatter-cfg-test-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static const char bin[] = "[scatter]\nrace_width = 2\n\0\x7f""ELF\x02\x01\n\0\0\0\n";
    fwrite(bin, 1, sizeof bin - 1, f);
    fclose(f);
    assert_int_equal(cfg_load(c, path, err, sizeof err), -1);
    unlink(path);
    assert_non_null(strstr(err, ":3: contains a NUL byte"));
    free(c);
    /* one real key is enough */
    c = malloc(sizeof *c);
    assert_int_equal(load_text(c, "[scatter]\nrace_width = 2\n", err, sizeof err), 0);
    free(c);
}

static void status_list_message_says_what_is_expected(void **s)
{
    (void)s;
    expect_error("[scatter]\nsuccess_status = abc\n",
                 ":2: [scatter] success_status = 'abc': expected a list of HTTP statuses (100-599), comma-separated");
    expect_error("[host:a.example]\nblocked_status = 403;x\n[scatter]\nrace_width = 2\n", "unquoted value");
    expect_error("[scatter]\nrace_width = 2\n[host:a.example]\nblocked_status = 700\n",
                 "blocked_status = '700': expected a list of HTTP statuses (100-599)");
    scatter_config *c = malloc(sizeof *c);
    char err[512] = "";
    assert_int_equal(load_text(c, "[scatter]\nsuccess_status = abc\n", err, sizeof err), -1);
    assert_null(strstr(err, "expected not"));
    free(c);
}

static void relative_paths_go_to_the_runtime_dir(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    char err[512] = "";
    cfg_defaults(c);
    snprintf(c->path, sizeof c->path, "x.ini");
    assert_string_equal(c->socket_path, "scatter.sock");
    assert_string_equal(c->pid_file, "scatterd.pid");
    assert_int_equal(cfg_resolve_paths(c, 0, NULL, err, sizeof err), 0);
    assert_string_equal(c->socket_path, "/run/scatter/scatter.sock");
    assert_string_equal(c->pid_file, "/run/scatter/scatterd.pid");
    assert_string_equal(c->runtime_dir, "/run/scatter");

    cfg_defaults(c);
    snprintf(c->path, sizeof c->path, "x.ini");
    assert_int_equal(cfg_resolve_paths(c, 1000, "/run/user/1000", err, sizeof err), 0);
    assert_string_equal(c->socket_path, "/run/user/1000/scatter/scatter.sock");
    assert_string_equal(c->pid_file, "/run/user/1000/scatter/scatterd.pid");

    /* not root, no XDG_RUNTIME_DIR, defaults in use: a clear error naming file and key */
    cfg_defaults(c);
    snprintf(c->path, sizeof c->path, "x.ini");
    assert_int_equal(cfg_resolve_paths(c, 1000, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "x.ini: [scatter] socket_path = 'scatter.sock' is relative"));
    assert_non_null(strstr(err, "XDG_RUNTIME_DIR is not set"));

    /* absolute paths (and an empty pid_file) need no runtime directory */
    cfg_defaults(c);
    snprintf(c->socket_path, sizeof c->socket_path, "/srv/s.sock");
    c->pid_file[0] = '\0';
    assert_int_equal(cfg_resolve_paths(c, 1000, NULL, err, sizeof err), 0);
    assert_string_equal(c->socket_path, "/srv/s.sock");
    assert_string_equal(c->pid_file, "");
    assert_string_equal(c->runtime_dir, "");
    free(c);
}

static void octal_trap_is_decimal(void **s)
{
    (void)s;
    scatter_config *c = malloc(sizeof *c);
    char err[256];
    assert_int_equal(load_text(c, "[scatter]\nmax_attempts = 010\n", err, sizeof err), 0);
    assert_int_equal(c->defaults.max_attempts, 10);
    free(c);
}

static void value_parsers(void **s)
{
    (void)s;
    uint32_t v;
    assert_int_equal(cfg_parse_duration_ms("30", 1000, &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(cfg_parse_duration_ms("2m", 1000, &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(cfg_parse_duration_ms("99999999h", 1000, &v), -1);
    assert_int_equal(cfg_parse_duration_ms("", 1000, &v), -1);
    assert_int_equal(cfg_parse_size("1M", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(cfg_parse_size("5G", &v), -1);
    assert_int_equal(cfg_parse_bool("Yes", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(cfg_parse_bool("y", &v), -1);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(defaults_are_documented_values),
        cmocka_unit_test(shard_and_redis_keys),
        cmocka_unit_test(redis_urls),
        cmocka_unit_test(shipped_ini_loads_and_matches_defaults),
        cmocka_unit_test(reload_merge_follows_the_table),
        cmocka_unit_test(host_sections_with_ports),
        cmocka_unit_test(print_default_config_round_trips),
        cmocka_unit_test(values_units_and_host_overrides),
        cmocka_unit_test(bad_input_names_key_line_value),
        cmocka_unit_test(metrics_listen_is_checked),
        cmocka_unit_test(empty_or_binary_file_is_an_error),
        cmocka_unit_test(status_list_message_says_what_is_expected),
        cmocka_unit_test(relative_paths_go_to_the_runtime_dir),
        cmocka_unit_test(octal_trap_is_decimal),
        cmocka_unit_test(value_parsers),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}

/*
 * status, proxies, hosts: one control request each, printed for people or as JSON.
 * The printers tolerate missing fields (a newer or older daemon): absent numbers show as 0.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/proto.h"
#include "ctl/cli.h"
#include "ctl/jsonconv.h"
#include "ctl/status_print.h"

static uint64_t u(const msgpack_object *m, const char *k)
{
    uint64_t v = 0;
    proto_get_u64(m, k, &v);
    return v;
}

static double f(const msgpack_object *m, const char *k)
{
    double v = 0;
    proto_get_f64(m, k, &v);
    return v;
}

/* "%.*s" arguments for a string field, "-" when absent */
#define S(m, k) (int)str_of(m, k).n, str_of(m, k).p
static proto_str str_of(const msgpack_object *m, const char *k)
{
    proto_str s = {"-", 1};
    proto_get_str(m, k, &s);
    return s;
}

static void print_duration(FILE *out, uint64_t s)
{
    if (s >= 86400)
        fprintf(out, "%" PRIu64 "d", s / 86400);
    if (s >= 3600)
        fprintf(out, "%02" PRIu64 "h", s / 3600 % 24);
    fprintf(out, "%02" PRIu64 "m%02" PRIu64 "s", s / 60 % 60, s % 60);
}

static void print_host_table(FILE *out, const msgpack_object *hosts)
{
    if (!hosts || hosts->type != MSGPACK_OBJECT_ARRAY || hosts->via.array.size == 0) {
        fprintf(out, "  (no hosts yet)\n");
        return;
    }
    fprintf(out, "  %-32s %-9s %7s %7s %7s %9s %9s %7s %8s\n", "HOST", "CIRCUIT", "HEALTHY", "COOLING", "DEAD",
            "SUCCESS", "FAIL", "TGT_ERR", "INTERVAL");
    for (uint32_t i = 0; i < hosts->via.array.size; i++) {
        const msgpack_object *h = &hosts->via.array.ptr[i];
        fprintf(out, "  %-32.*s %-9.*s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %9" PRIu64 " %9" PRIu64 " %7" PRIu64
                     " %6" PRIu64 "ms\n",
                S(h, "name"), S(h, "circuit"), u(h, "healthy"), u(h, "cooling"), u(h, "dead"), u(h, "success"),
                u(h, "fail"), u(h, "target_errors"), u(h, "interval_ms"));
    }
}

void print_status(FILE *out, const msgpack_object *st)
{
    const msgpack_object *px = proto_map_get(st, "proxies");
    const msgpack_object *tk = proto_map_get(st, "tasks");
    const msgpack_object *tp = proto_map_get(st, "throughput");
    const msgpack_object *sl = proto_map_get(st, "stalls");
    fprintf(out, "scatterd %.*s  up ", S(st, "version"));
    print_duration(out, u(st, "uptime_s"));
    fprintf(out, "  workers %" PRIu64 " (this reply from worker %" PRIu64 ")\n", u(st, "workers"), u(st, "worker"));
    fprintf(out, "throughput  %.1f/s (1s)  %.1f/s (10s)  %.1f/s (60s)\n", f(tp, "1s"), f(tp, "10s"), f(tp, "60s"));
    fprintf(out, "success     %.1f%% (last minute)   avg latency %.0f ms   in flight %" PRIu64 "\n",
            100.0 * f(st, "success_rate_1m"), f(st, "avg_latency_ms"), u(st, "inflight"));
    fprintf(out, "proxies     %" PRIu64 " healthy / %" PRIu64 " cooling / %" PRIu64 " dead / %" PRIu64 " total\n",
            u(px, "healthy"), u(px, "cooling"), u(px, "dead"), u(px, "total"));
    proto_str shard;
    if (proto_get_str(st, "shard", &shard) == 0 && !(shard.n == 3 && memcmp(shard.p, "0/1", 3) == 0))
        fprintf(out, "shard       %.*s (%" PRIu64 " proxies of the sources are outside it)\n", (int)shard.n, shard.p,
                u(st, "shard_dropped"));
    const msgpack_object *rd = proto_map_get(st, "redis");
    if (rd && (u(rd, "connected_workers") || u(rd, "read") || u(rd, "claimed")))
        fprintf(out,
                "redis       %" PRIu64 " of %" PRIu64 " workers connected; entries read %" PRIu64 ", claimed %" PRIu64
                ", answered %" PRIu64 ", left pending %" PRIu64 ", dead letters %" PRIu64 "\n",
                u(rd, "connected_workers"), u(st, "workers"), u(rd, "read"), u(rd, "claimed"), u(rd, "answered"),
                u(rd, "left_pending"), u(rd, "dead_letters"));
    fprintf(out,
            "tasks       %" PRIu64 " pending  %" PRIu64 " submitted  %" PRIu64 " completed  %" PRIu64
            " failed  %" PRIu64 " cancelled\n",
            u(tk, "pending"), u(tk, "submitted"), u(tk, "completed"), u(tk, "failed"), u(tk, "cancelled"));
    fprintf(out, "hosts\n");
    print_host_table(out, proto_map_get(st, "hosts"));
    fprintf(out, "stalls      delayed %" PRIu64 "  requeued %" PRIu64 "  dispatches %" PRIu64 "  zero_avail %" PRIu64 "\n",
            u(sl, "delayed"), u(sl, "requeued"), u(sl, "dispatches"), u(sl, "zero_avail"));
    fprintf(out, "            skipped: ratelimit %" PRIu64 "  cooldown %" PRIu64 "  inflight %" PRIu64 "\n",
            u(sl, "skip_ratelimit"), u(sl, "skip_cooldown"), u(sl, "skip_inflight"));
    uint64_t sels = u(sl, "selects");
    fprintf(out, "            selections %" PRIu64 " (%.2f us each)\n", sels,
            sels ? (double)u(sl, "select_ns") / 1000.0 / (double)sels : 0.0);
    fprintf(out, "            attempts %" PRIu64 " (cancelled %" PRIu64 ", failed %" PRIu64 ", straggler hedges %" PRIu64 ")\n",
            u(sl, "attempts"), u(sl, "attempts_cancelled"), u(sl, "attempts_failed"), u(sl, "straggler_hedges"));
}

void print_hosts(FILE *out, const msgpack_object *hosts) { print_host_table(out, hosts); }

static void print_rate(FILE *out, const msgpack_object *m, const char *k)
{
    double r;
    if (proto_get_f64(m, k, &r))
        fprintf(out, "%6s", "-");
    else
        fprintf(out, "%5.1f%%", 100.0 * r);
}

void print_proxies(FILE *out, const msgpack_object *reply)
{
    const msgpack_object *list = proto_map_get(reply, "proxies");
    uint32_t n = list && list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0;
    uint64_t total = u(reply, "total"), next = u(reply, "next_offset");
    fprintf(out, "%" PRIu64 " proxies, %u shown", total, n);
    if (next && next < total) /* the daemon bounds a page: say how to get the next one */
        fprintf(out, "; next page: scatterctl proxies --offset %" PRIu64, next);
    fputc('\n', out);
    if (!n)
        return;
    fprintf(out, "%-48s %-7s %9s %9s %6s\n", "PROXY", "STATE", "SUCCESS", "FAIL", "RATE");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *p = &list->via.array.ptr[i];
        fprintf(out, "%-48.*s %-7.*s %9" PRIu64 " %9" PRIu64 " ", S(p, "url"), S(p, "state"), u(p, "success"),
                u(p, "fail"));
        print_rate(out, p, "rate");
        fputc('\n', out);
        const msgpack_object *hs = proto_map_get(p, "hosts");
        for (uint32_t j = 0; hs && hs->type == MSGPACK_OBJECT_ARRAY && j < hs->via.array.size; j++) {
            const msgpack_object *h = &hs->via.array.ptr[j];
            int dead = 0;
            proto_get_bool(h, "dead", &dead);
            fprintf(out, "    %-40.*s ok %" PRIu64 " fail %" PRIu64 " window ", S(h, "host"), u(h, "success"),
                    u(h, "fail"));
            print_rate(out, h, "window_rate");
            fprintf(out, " latency %" PRIu64 "ms consec_fails %" PRIu64, u(h, "latency_ms"), u(h, "consec_fails"));
            if (u(h, "cooldown_ms"))
                fprintf(out, " cooling %" PRIu64 "ms", u(h, "cooldown_ms"));
            if (dead)
                fprintf(out, " DEAD");
            fputc('\n', out);
        }
    }
}

static int print_json(const msgpack_object *o)
{
    json_t *j = jc_from_msgpack(o, JC_BIN_BASE64);
    if (!j)
        return EXIT_FAILED;
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    json_decref(j);
    return EXIT_OK;
}

/* Runs one control op and hands the reply's map (already checked ok) to the printer. */
static int control(const char *sock, const char *cmd, uint32_t limit, uint32_t offset, const char *host, int json,
                   const char *field)
{
    sc_client *c;
    int rc = cli_connect(sock, cmd, 1, 1, &c);
    if (rc)
        return rc;
    msgpack_unpacked reply;
    char err[256];
    int exit_code = EXIT_OK;
    if (sc_call(c, cmd, limit, offset, host, CLI_CALL_TIMEOUT_MS, &reply, err, sizeof err)) {
        fprintf(stderr, "scatterctl %s: %s\n", cmd, err);
        sc_client_free(c);
        return EXIT_FAILED;
    }
    int ok = 0;
    proto_get_bool(&reply.data, "ok", &ok);
    if (!ok) {
        fprintf(stderr, "scatterctl %s: %.*s: %.*s\n", cmd, S(&reply.data, "error"), S(&reply.data, "message"));
        exit_code = EXIT_FAILED;
    } else {
        const msgpack_object *body = field ? proto_map_get(&reply.data, field) : &reply.data;
        if (!body) {
            fprintf(stderr, "scatterctl %s: reply has no '%s'\n", cmd, field);
            exit_code = EXIT_FAILED;
        } else if (json) {
            exit_code = print_json(body);
        } else if (strcmp(cmd, "status") == 0) {
            print_status(stdout, body);
        } else if (strcmp(cmd, "hosts") == 0) {
            print_hosts(stdout, body);
        } else {
            print_proxies(stdout, body);
        }
    }
    msgpack_unpacked_destroy(&reply);
    sc_client_free(c);
    return exit_code;
}

/* status and hosts: one optional --json, no arguments. */
static int plain_listing(const char *sock, int argc, char **argv, const char *op)
{
    static const struct option L[] = {{"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
    int json = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:j", L, NULL)) != -1) {
        if (ch == 'j')
            json = 1;
        else
            return cli_bad_option(op, ch, argv);
    }
    if (optind < argc)
        return cli_usage_error(op, "unexpected argument '%s'", argv[optind]);
    return control(sock, op, 0, 0, NULL, json, op);
}

int cmd_status(const char *sock, int argc, char **argv)
{
    return plain_listing(sock, argc, argv, "status");
}

int cmd_hosts(const char *sock, int argc, char **argv)
{
    return plain_listing(sock, argc, argv, "hosts");
}

int cmd_proxies(const char *sock, int argc, char **argv)
{
    static const struct option L[] = {
        {"json", no_argument, 0, 'j'}, {"host", required_argument, 0, 'H'}, {"limit", required_argument, 0, 'n'},
        {"offset", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    int json = 0, ch;
    const char *host = NULL;
    uint64_t limit = 1000, offset = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:jH:n:o:", L, NULL)) != -1) {
        if (ch == 'j')
            json = 1;
        else if (ch == 'H')
            host = optarg;
        else if (ch == 'n') {
            if (cli_uint("proxies", "--limit", optarg, 1, UINT32_MAX, &limit))
                return EXIT_USAGE;
        } else if (ch == 'o') {
            if (cli_uint("proxies", "--offset", optarg, 0, UINT32_MAX, &offset))
                return EXIT_USAGE;
        } else
            return cli_bad_option("proxies", ch, argv);
    }
    if (optind < argc)
        return cli_usage_error("proxies", "unexpected argument '%s'", argv[optind]);
    return control(sock, "proxies", (uint32_t)limit, (uint32_t)offset, host, json, NULL);
}

int cmd_config(const char *sock, int argc, char **argv)
{
    static const struct option L[] = {{"master", no_argument, 0, 'm'}, {0, 0, 0, 0}};
    int master = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:m", L, NULL)) != -1) {
        if (ch == 'm')
            master = 1;
        else
            return cli_bad_option("config", ch, argv);
    }
    if (optind < argc)
        return cli_usage_error("config", "unexpected argument '%s'", argv[optind]);
    sc_client *c;
    int rc = cli_connect(sock, "config", 1, 1, &c);
    if (rc)
        return rc;
    msgpack_unpacked reply;
    char err[256];
    if (sc_call(c, "config", 0, 0, NULL, CLI_CALL_TIMEOUT_MS, &reply, err, sizeof err)) {
        fprintf(stderr, "scatterctl config: %s\n", err);
        sc_client_free(c);
        return EXIT_FAILED;
    }
    int ok = 0, exit_code = EXIT_OK;
    proto_get_bool(&reply.data, "ok", &ok);
    proto_str text;
    if (!ok) {
        fprintf(stderr, "scatterctl config: %.*s: %.*s\n", S(&reply.data, "error"), S(&reply.data, "message"));
        exit_code = EXIT_FAILED;
    } else if (proto_get_str(&reply.data, master ? "master" : "worker", &text)) {
        fprintf(stderr, "scatterctl config: the reply has no configuration text\n");
        exit_code = EXIT_FAILED;
    } else {
        fwrite(text.p, 1, text.n, stdout);
    }
    msgpack_unpacked_destroy(&reply);
    sc_client_free(c);
    return exit_code;
}

/*
 * fetch: streams URLs through the client library with a bounded window. Input is read only
 * when a slot frees up, so memory stays at `window` tasks however long the input is.
 * Output per task: DIR/<n>.body for successes (-o) or one JSON line in completion order
 * (--jsonl). Progress goes to stderr: redrawn on a terminal, one plain line every 2 s otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/limits.h"
#include "common/proto.h"
#include "ctl/cli.h"
#include "ctl/fetch_input.h"
#include "ctl/jsonconv.h"

#define MAX_CODES 16

typedef struct {
    uint64_t n;
    char url[];
} tag;

typedef struct {
    const char *outdir;
    FILE *jsonl;
    int tty, quiet;
    int64_t start, last_progress;
    uint64_t read, done, ok, failed;
    int input_done;
    struct {
        char code[32];
        uint64_t n;
    } codes[MAX_CODES];
    int ncodes;
} run;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count_failure(run *r, const char *code)
{
    r->failed++;
    for (int i = 0; i < r->ncodes; i++)
        if (strcmp(r->codes[i].code, code) == 0) {
            r->codes[i].n++;
            return;
        }
    int i = r->ncodes;
    if (i < MAX_CODES - 1)
        r->ncodes++;
    else { /* the last bucket absorbs codes beyond the table */
        i = MAX_CODES - 1;
        r->ncodes = MAX_CODES;
        code = "other";
    }
    snprintf(r->codes[i].code, sizeof r->codes[i].code, "%s", code);
    r->codes[i].n++;
}

static int write_body(const run *r, uint64_t n, const sc_result *res)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%" PRIu64 ".body", r->outdir, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "scatterctl fetch: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < res->body_len) {
        ssize_t w = write(fd, res->body + off, res->body_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "scatterctl fetch: cannot write %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

/* One line per task; keys always present so consumers need no special cases: the fields that
 * do not apply to the outcome are null. */
static void write_jsonl(run *r, uint64_t n, const char *url, const sc_result *res, const char *code, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)n));
    json_object_set_new(o, "url", jc_string(url, strlen(url)));
    int ok = res && res->ok;
    json_object_set_new(o, "ok", json_boolean(ok));
    json_object_set_new(o, "status", ok ? json_integer(res->status) : json_null());
    json_object_set_new(o, "proxy", ok ? jc_string(res->proxy, strlen(res->proxy)) : json_null());
    json_object_set_new(o, "attempts", json_integer(res ? (json_int_t)res->attempts : 0));
    json_object_set_new(o, "race", json_integer(res ? (json_int_t)res->race : 0));
    json_object_set_new(o, "latency_ms", ok ? json_integer((json_int_t)res->latency_ms) : json_null());
    json_object_set_new(o, "elapsed_ms", json_integer(res ? (json_int_t)res->elapsed_ms : 0));
    json_object_set_new(o, "error", ok ? json_null() : jc_string(code, strlen(code)));
    json_object_set_new(o, "message", ok ? json_null() : jc_string(msg, strlen(msg)));
    json_object_set_new(o, "bytes", json_integer(ok ? (json_int_t)res->body_len : 0));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line) {
        fputs(line, r->jsonl);
        fputc('\n', r->jsonl);
        free(line);
    }
    json_decref(o);
}

static void progress(run *r, int final)
{
    int64_t now = now_ms();
    if (r->quiet || (!final && now - r->last_progress < (r->tty ? 200 : 2000)))
        return;
    r->last_progress = now;
    double secs = (double)(now - r->start) / 1000.0;
    double rate = secs > 0 ? (double)r->done / secs : 0;
    double okp = r->done ? 100.0 * (double)r->ok / (double)r->done : 0;
    if (r->tty) {
        fputs("\r\033[K", stderr);
        if (r->input_done && r->read) {
            int w = 30, fill = (int)((double)w * (double)r->done / (double)r->read);
            fputc('[', stderr);
            for (int i = 0; i < w; i++)
                fputc(i < fill ? '#' : '.', stderr);
            fprintf(stderr, "] %" PRIu64 "/%" PRIu64, r->done, r->read);
        } else {
            fprintf(stderr, "%" PRIu64 " done (reading input)", r->done);
        }
        fprintf(stderr, "  %.1f/s  ok %.1f%%  failed %" PRIu64, rate, okp, r->failed);
        if (final)
            fputc('\n', stderr);
    } else if (!final) {
        fprintf(stderr, "fetch: %" PRIu64 " done", r->done);
        if (r->input_done)
            fprintf(stderr, " of %" PRIu64, r->read);
        fprintf(stderr, ", %.1f/s, ok %.1f%%, failed %" PRIu64 "\n", rate, okp, r->failed);
    }
    fflush(stderr);
}

static void summary(const run *r)
{
    if (r->quiet)
        return;
    double secs = (double)(now_ms() - r->start) / 1000.0;
    fprintf(stderr, "fetch: %" PRIu64 " tasks, %" PRIu64 " ok, %" PRIu64 " failed", r->done, r->ok, r->failed);
    for (int i = 0; i < r->ncodes; i++)
        fprintf(stderr, "%s%s %" PRIu64, i ? ", " : " (", r->codes[i].code, r->codes[i].n);
    fprintf(stderr, "%s in %.1f s, %.1f tasks/s\n", r->ncodes ? ")" : "", secs, secs > 0 ? (double)r->done / secs : 0);
}

static void finish(run *r, tag *t, const sc_result *res)
{
    r->done++;
    if (res->ok) {
        r->ok++;
        if (r->outdir && write_body(r, t->n, res))
            count_failure(r, "write_error"), r->ok--;
    } else {
        count_failure(r, res->code);
    }
    if (r->jsonl)
        write_jsonl(r, t->n, t->url, res, res->code, res->message);
}

static int parse_header(const char *arg, sc_header *h)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg)
        return -1;
    for (const char *p = arg; p < colon; p++)
        if (*p == ' ' || *p == '\t')
            return -1;
    char *name = strndup(arg, (size_t)(colon - arg));
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    h->name = name;
    h->value = v;
    return name ? 0 : -1;
}

/* The command line of fetch. */
typedef struct {
    const char *input, *outdir, *jsonl, *method;
    uint64_t race, timeout_ms, attempts, window;
    int has_timeout, has_attempts, quiet;
    sc_header hdr[PROTO_MAX_HEADERS];
    size_t nh;
} fetch_opts;

/* Parses the options (optind then points at the URLs). EXIT_OK or the exit code. */
static int parse_options(int argc, char **argv, fetch_opts *o)
{
    static const struct option L[] = {
        {"input", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
        {"jsonl", required_argument, 0, 'J'},   {"race", required_argument, 0, 'r'},
        {"timeout", required_argument, 0, 't'}, {"attempts", required_argument, 0, 'a'},
        {"window", required_argument, 0, 'w'},  {"header", required_argument, 0, 'H'},
        {"method", required_argument, 0, 'X'},  {"quiet", no_argument, 0, 'q'},
        {0, 0, 0, 0}};
    int ch, code = EXIT_OK;
    optind = 0;
    while (!code && (ch = getopt_long(argc, argv, ":i:o:J:r:t:a:w:H:X:q", L, NULL)) != -1) {
        switch (ch) {
        case 'i': o->input = optarg; break;
        case 'o': o->outdir = optarg; break;
        case 'J': o->jsonl = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'X':
            o->method = optarg;
            for (const char *p = optarg; *p; p++)
                if (*p < 'A' || *p > 'Z')
                    code = cli_usage_error("fetch", "bad --method '%s': upper-case letters only", optarg);
            if (!*optarg || strlen(optarg) > 16)
                code = cli_usage_error("fetch", "bad --method '%s': 1 to 16 upper-case letters", optarg);
            break;
        case 'r': code = cli_uint("fetch", "--race", optarg, 1, SC_RACE_MAX, &o->race) ? EXIT_USAGE : code; break;
        case 'a':
            code = cli_uint("fetch", "--attempts", optarg, 0, UINT32_MAX, &o->attempts) ? EXIT_USAGE : code;
            o->has_attempts = 1;
            break;
        case 'w': code = cli_uint("fetch", "--window", optarg, 1, SC_MAX_WINDOW, &o->window) ? EXIT_USAGE : code; break;
        case 't':
            code = cli_seconds_ms("fetch", "--timeout", optarg, &o->timeout_ms) ? EXIT_USAGE : code;
            if (o->timeout_ms > UINT32_MAX)
                code = cli_usage_error("fetch", "bad --timeout '%s': too long", optarg);
            o->has_timeout = 1;
            break;
        case 'H':
            if (o->nh == PROTO_MAX_HEADERS)
                code = cli_usage_error("fetch", "too many -H (at most %d)", PROTO_MAX_HEADERS);
            else if (parse_header(optarg, &o->hdr[o->nh]))
                code = cli_usage_error("fetch", "bad -H '%s': expected 'Name: value'", optarg);
            else
                o->nh++;
            break;
        default:
            code = cli_bad_option("fetch", ch, argv);
        }
    }
    if (!code && o->outdir && o->jsonl)
        code = cli_usage_error("fetch", "-o '%s' and --jsonl '%s' cannot be used together", o->outdir, o->jsonl);
    if (!code && !o->input && optind >= argc)
        code = cli_usage_error("fetch", "no URL given: pass URLs or -i FILE");
    return code;
}

/* Submits input URLs while the window has room. EXIT_OK, or EXIT_FAILED (input unreadable,
 * out of memory: the input then counts as done). */
static int submit_more(run *r, sc_client *c, fetch_input *in, sc_request *req, unsigned win)
{
    int code = EXIT_OK;
    char err[256];
    while (!r->input_done && sc_client_outstanding(c) < win) {
        const char *url;
        uint64_t n;
        int got = fetch_input_next(in, &url, &n);
        if (got < 0) {
            fprintf(stderr, "scatterctl fetch: reading input: %s\n", strerror(-got));
            code = EXIT_FAILED;
        }
        if (got <= 0) {
            r->input_done = 1;
            break;
        }
        r->read++;
        size_t ul = strlen(url);
        tag *t = malloc(sizeof *t + ul + 1);
        if (!t) {
            r->input_done = 1;
            return EXIT_FAILED;
        }
        t->n = n;
        memcpy(t->url, url, ul + 1);
        req->url = t->url;
        int rc = sc_submit(c, req, t, NULL, err, sizeof err);
        if (rc) {
            /* refused before it left: still one outcome for this URL */
            const char *ecode = rc == -EMSGSIZE ? "too_large" : "bad_request";
            r->done++;
            count_failure(r, ecode);
            if (r->jsonl)
                write_jsonl(r, n, url, NULL, ecode, err);
            free(t);
        }
    }
    return code;
}

/* Runs the whole input through the daemon, one outcome per URL. EXIT_OK or EXIT_FAILED. */
static int fetch_all(run *r, sc_client *c, fetch_input *in, sc_request *req)
{
    int code = EXIT_OK;
    unsigned win = sc_client_window(c);
    r->start = r->last_progress = now_ms();
    for (;;) {
        if (submit_more(r, c, in, req, win))
            code = EXIT_FAILED;
        if (r->input_done && sc_client_outstanding(c) == 0)
            break;
        sc_result *res;
        int rc = sc_next_result(c, 100, &res);
        if (rc == 1) {
            tag *t = res->user;
            finish(r, t, res);
            free(t);
            sc_result_free(res);
        } else if (rc < 0 && rc != -ENOENT) {
            fprintf(stderr, "\nscatterctl fetch: %s\n", strerror(-rc));
            code = EXIT_FAILED;
            break;
        }
        progress(r, 0);
    }
    progress(r, 1);
    summary(r);
    /* abandoned tasks (fatal error above) still own their tags */
    for (sc_result *res; sc_client_outstanding(c) && sc_next_result(c, 0, &res) == 1;) {
        free(res->user);
        sc_result_free(res);
    }
    return code || r->failed ? EXIT_FAILED : EXIT_OK;
}

int cmd_fetch(const char *sock, int argc, char **argv)
{
    fetch_opts o = {0};
    int code = parse_options(argc, argv, &o);
    if (!code && o.outdir && mkdir(o.outdir, 0755) && errno != EEXIST) {
        fprintf(stderr, "scatterctl fetch: cannot create -o '%s': %s\n", o.outdir, strerror(errno));
        code = EXIT_FAILED;
    }
    run r = {.outdir = o.outdir, .quiet = o.quiet, .tty = isatty(STDERR_FILENO)};
    fetch_input in;
    char err[256];
    memset(&in, 0, sizeof in);
    if (!code && fetch_input_open(&in, argv + optind, argc - optind, o.input, err, sizeof err)) {
        fprintf(stderr, "scatterctl fetch: -i: %s\n", err);
        code = EXIT_FAILED;
    }
    if (!code && o.jsonl) {
        r.jsonl = strcmp(o.jsonl, "-") == 0 ? stdout : fopen(o.jsonl, "w");
        if (!r.jsonl) {
            fprintf(stderr, "scatterctl fetch: cannot open --jsonl '%s': %s\n", o.jsonl, strerror(errno));
            code = EXIT_FAILED;
        }
    }
    sc_client *c = NULL;
    if (!code)
        code = cli_connect(sock, "fetch", 0, (unsigned)o.window, &c);
    if (!code) {
        sc_request req = {.method = o.method, .headers = o.hdr, .n_headers = o.nh, .race_width = (uint32_t)o.race,
                          .timeout_ms = (uint32_t)o.timeout_ms, .has_timeout = o.has_timeout,
                          .max_attempts = (uint32_t)o.attempts, .has_max_attempts = o.has_attempts};
        code = fetch_all(&r, c, &in, &req);
    }
    if (r.jsonl && r.jsonl != stdout)
        fclose(r.jsonl);
    else if (r.jsonl)
        fflush(stdout);
    sc_client_free(c);
    fetch_input_close(&in);
    for (size_t i = 0; i < o.nh; i++)
        free((char *)o.hdr[i].name);
    return code;
}

/*
 * fetch: streams URLs through the client library with a bounded window. Input is read only
 * when a slot frees up, so memory stays at `window` tasks however long the input is.
 * Each input is a URL (-i, arguments) or a JSON line (--input-jsonl) whose fields override the
 * command line's settings (fetch_request.h); an input that yields no request (a bad line) is
 * one failed outcome like any other, so the run goes on and the exit status tells.
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
#include "ctl/fetch_request.h"
#include "ctl/jsonconv.h"
#include "ctl/redis_client.h"

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
    int jsonl_input;          /* the file holds JSON lines, not URLs */
    const char *input_name;
    uint64_t bad_lines;
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
    json_object_set_new(o, "url", url ? jc_string(url, strlen(url)) : json_null());
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

/* Where tasks go: the daemon's sockets, or the Redis stream (--redis). One of the two is set. */
typedef struct {
    sc_client *sc;
    rq_client *rq;
} xport;

static unsigned x_window(const xport *x)
{
    return x->rq ? rq_window(x->rq) : sc_client_window(x->sc);
}

static unsigned x_outstanding(const xport *x)
{
    return x->rq ? rq_outstanding(x->rq) : sc_client_outstanding(x->sc);
}

static int x_submit(xport *x, const sc_request *req, void *user, char *err, size_t cap)
{
    return x->rq ? rq_submit(x->rq, req, user, err, cap) : sc_submit(x->sc, req, user, NULL, err, cap);
}

static int x_next(xport *x, int timeout_ms, sc_result **out)
{
    if (!x->rq)
        return sc_next_result(x->sc, timeout_ms, out);
    char err[256] = "";
    int rc = rq_next_result(x->rq, timeout_ms, out, err, sizeof err);
    if (rc == -EIO && err[0])
        fprintf(stderr, "\nscatterctl fetch: %s\n", err);
    return rc;
}

/* The command line of fetch. */
typedef struct {
    const char *input, *input_jsonl, *outdir, *jsonl, *data, *data_file;
    const char *redis, *stream;
    uint64_t window;
    int quiet;
    fetch_spec defs; /* every task's settings unless its JSON line says otherwise */
} fetch_opts;

static int parse_method(const char *arg, fetch_spec *s)
{
    size_t n = strlen(arg);
    int good = n >= 1 && n <= FR_METHOD_MAX;
    for (size_t i = 0; good && i < n; i++)
        good = arg[i] >= 'A' && arg[i] <= 'Z';
    if (!good)
        return cli_usage_error("fetch", "bad --method '%s': 1 to 16 upper-case letters A-Z", arg);
    memcpy(s->method, arg, n + 1);
    return EXIT_OK;
}

/* Parses the options (optind then points at the URLs). EXIT_OK or the exit code. */
static int parse_options(int argc, char **argv, fetch_opts *o)
{
    enum { O_DATA_FILE = 256, O_HEADER_FILE, O_INPUT_JSONL, O_SESSION, O_REDIS, O_STREAM };
    static const struct option L[] = {
        {"input", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
        {"jsonl", required_argument, 0, 'J'},   {"race", required_argument, 0, 'r'},
        {"timeout", required_argument, 0, 't'}, {"attempts", required_argument, 0, 'a'},
        {"window", required_argument, 0, 'w'},  {"header", required_argument, 0, 'H'},
        {"method", required_argument, 0, 'X'},  {"quiet", no_argument, 0, 'q'},
        {"data", required_argument, 0, 'd'},    {"data-file", required_argument, 0, O_DATA_FILE},
        {"header-file", required_argument, 0, O_HEADER_FILE},
        {"input-jsonl", required_argument, 0, O_INPUT_JSONL},
        {"session", required_argument, 0, O_SESSION},
        {"redis", required_argument, 0, O_REDIS},  {"stream", required_argument, 0, O_STREAM},
        {0, 0, 0, 0}};
    fetch_spec *d = &o->defs;
    int ch, code = EXIT_OK;
    char err[512];
    optind = 0;
    while (!code && (ch = getopt_long(argc, argv, ":i:o:J:r:t:a:w:H:X:qd:", L, NULL)) != -1) {
        switch (ch) {
        case 'i': o->input = optarg; break;
        case O_INPUT_JSONL: o->input_jsonl = optarg; break;
        case 'o': o->outdir = optarg; break;
        case 'J': o->jsonl = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'd': o->data = optarg; break;
        case O_DATA_FILE: o->data_file = optarg; break;
        case O_REDIS: o->redis = optarg; break;
        case O_STREAM:
            if (!*optarg || strpbrk(optarg, " \t\r\n"))
                code = cli_usage_error("fetch", "bad --stream '%s': a stream name without spaces", optarg);
            o->stream = optarg;
            break;
        case 'X': code = parse_method(optarg, d); break;
        case 'r':
            code = cli_uint("fetch", "--race", optarg, 1, SC_RACE_MAX, &d->race) ? EXIT_USAGE : code;
            d->has_race = 1;
            break;
        case 'a':
            code = cli_uint("fetch", "--attempts", optarg, 0, UINT32_MAX, &d->attempts) ? EXIT_USAGE : code;
            d->has_attempts = 1;
            break;
        case 'w': code = cli_uint("fetch", "--window", optarg, 1, SC_MAX_WINDOW, &o->window) ? EXIT_USAGE : code; break;
        case 't':
            code = cli_seconds_ms("fetch", "--timeout", optarg, &d->timeout_ms) ? EXIT_USAGE : code;
            if (!code && d->timeout_ms > UINT32_MAX)
                code = cli_usage_error("fetch", "bad --timeout '%s': too long", optarg);
            d->has_timeout = 1;
            break;
        case 'H':
            if (fr_add_header(d, optarg, strlen(optarg), err, sizeof err))
                code = cli_usage_error("fetch", "bad -H '%s': %s", optarg, err);
            break;
        case O_HEADER_FILE:
            if (fr_header_file(d, optarg, err, sizeof err))
                code = cli_usage_error("fetch", "--header-file %s", err);
            break;
        case O_SESSION:
            if (!*optarg || strlen(optarg) > FR_SESSION_MAX)
                code = cli_usage_error("fetch", "bad --session '%s': 1 to %d bytes", optarg, FR_SESSION_MAX);
            else
                memcpy(d->session, optarg, strlen(optarg) + 1);
            break;
        default:
            code = cli_bad_option("fetch", ch, argv);
        }
    }
    if (code)
        return code;
    if (o->stream && !o->redis)
        return cli_usage_error("fetch", "--stream '%s' needs --redis URL", o->stream);
    if (o->outdir && o->jsonl)
        return cli_usage_error("fetch", "-o '%s' and --jsonl '%s' cannot be used together", o->outdir, o->jsonl);
    if (o->input && o->input_jsonl)
        return cli_usage_error("fetch", "-i '%s' and --input-jsonl '%s' cannot be used together", o->input,
                               o->input_jsonl);
    if (o->data && o->data_file)
        return cli_usage_error("fetch", "--data and --data-file '%s' cannot be used together", o->data_file);
    const char *in = o->input ? o->input : o->input_jsonl;
    if (o->data_file && in && strcmp(o->data_file, "-") == 0 && strcmp(in, "-") == 0)
        return cli_usage_error("fetch", "--data-file - and %s - cannot both read standard input",
                               o->input ? "-i" : "--input-jsonl");
    if ((o->data || o->data_file) && strcmp(d->method, "HEAD") == 0)
        return cli_usage_error("fetch", "-X HEAD cannot send a body (--data%s)", o->data ? "" : "-file");
    if (!in && optind >= argc)
        return cli_usage_error("fetch", "no URL given: pass URLs, -i FILE or --input-jsonl FILE");
    return EXIT_OK;
}

/* A line that yields no request: one failed outcome, like a task the daemon refused. */
static void reject(run *r, uint64_t n, const char *url, const char *code, const char *msg)
{
    r->done++;
    count_failure(r, code);
    if (r->jsonl)
        write_jsonl(r, n, url, NULL, code, msg);
}

/* A bad --input-jsonl line fails alone, so one broken record does not cost a long batch;
 * stderr names the first BAD_LINES_SHOWN, the jsonl results all of them. */
#define BAD_LINES_SHOWN 20
static void bad_line(run *r, const fetch_input *in, uint64_t n, const char *why)
{
    char msg[640];
    snprintf(msg, sizeof msg, "line %" PRIu64 ": %s", in->lineno, why);
    if (!r->quiet && r->bad_lines < BAD_LINES_SHOWN)
        fprintf(stderr, "%sscatterctl fetch: --input-jsonl %s:%" PRIu64 ": %s\n", r->tty ? "\r\033[K" : "",
                r->input_name, in->lineno, why);
    else if (!r->quiet && r->bad_lines == BAD_LINES_SHOWN)
        fprintf(stderr, "%sscatterctl fetch: more bad lines; --jsonl lists every one\n", r->tty ? "\r\033[K" : "");
    r->bad_lines++;
    reject(r, n, NULL, "bad_input", msg);
}

/* Submits input while the window has room. EXIT_OK, or EXIT_FAILED (input unreadable,
 * out of memory: the input then counts as done). */
static int submit_more(run *r, xport *c, fetch_input *in, const fetch_spec *defs, unsigned win)
{
    int code = EXIT_OK;
    char err[512];
    while (!r->input_done && x_outstanding(c) < win) {
        const char *text;
        uint64_t n;
        int got = fetch_input_next(in, &text, &n);
        if (got == -E2BIG) {
            r->read++;
            snprintf(err, sizeof err, "longer than %zu bytes", in->max_line);
            if (r->jsonl_input)
                bad_line(r, in, n, err);
            else
                reject(r, n, NULL, "too_large", err);
            continue;
        }
        if (got < 0) {
            fprintf(stderr, "scatterctl fetch: reading input: %s\n", strerror(-got));
            code = EXIT_FAILED;
        }
        if (got <= 0) {
            r->input_done = 1;
            break;
        }
        r->read++;
        fetch_spec line;
        const fetch_spec *lp = NULL;
        if (r->jsonl_input && in->from_file) {
            if (fr_parse_jsonl(text, strlen(text), &line, err, sizeof err)) {
                bad_line(r, in, n, err);
                fr_spec_free(&line);
                continue;
            }
            lp = &line;
        }
        sc_request req;
        sc_header hbuf[PROTO_MAX_HEADERS];
        if (fr_build(defs, lp, &req, hbuf, err, sizeof err)) {
            if (lp)
                bad_line(r, in, n, err);
            else
                reject(r, n, text, "bad_request", err);
            if (lp)
                fr_spec_free(&line);
            continue;
        }
        if (!lp)
            req.url = text;
        size_t ul = strlen(req.url);
        tag *t = malloc(sizeof *t + ul + 1);
        if (!t) {
            if (lp)
                fr_spec_free(&line);
            r->input_done = 1;
            return EXIT_FAILED;
        }
        t->n = n;
        memcpy(t->url, req.url, ul + 1);
        int rc = x_submit(c, &req, t, err, sizeof err);
        if (lp)
            fr_spec_free(&line);
        if (rc) {
            /* refused before it left: still one outcome for this input */
            reject(r, n, t->url, rc == -EMSGSIZE ? "too_large" : "bad_request", err);
            free(t);
        }
    }
    return code;
}

/* Runs the whole input through the daemon, one outcome per URL. EXIT_OK or EXIT_FAILED. */
static int fetch_all(run *r, xport *c, fetch_input *in, const fetch_spec *defs)
{
    int code = EXIT_OK;
    unsigned win = x_window(c);
    r->start = r->last_progress = now_ms();
    for (;;) {
        if (submit_more(r, c, in, defs, win))
            code = EXIT_FAILED;
        if (r->input_done && x_outstanding(c) == 0)
            break;
        sc_result *res;
        int rc = x_next(c, 100, &res);
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
    if (c->rq && rq_duplicates(c->rq) && !r->quiet)
        fprintf(stderr, "fetch: %" PRIu64 " results came twice (tasks taken over after an instance died); the first "
                        "of each was kept\n", rq_duplicates(c->rq));
    /* abandoned tasks (fatal error above) still own their tags */
    for (sc_result *res; !c->rq && sc_client_outstanding(c->sc) && sc_next_result(c->sc, 0, &res) == 1;) {
        free(res->user);
        sc_result_free(res);
    }
    return code || r->failed ? EXIT_FAILED : EXIT_OK;
}

/* The command line's body, read once the daemon has said how large a body may be. */
static int load_body(const fetch_opts *o, fetch_spec *d, const xport *c)
{
    /* over Redis the daemons are not asked: their own check answers too_large */
    uint64_t max = c->sc ? sc_client_info(c->sc)->max_request_body : 1u << 30;
    char err[512];
    if (o->data_file) {
        if (fr_body_file(d, o->data_file, (size_t)max, err, sizeof err)) {
            fprintf(stderr, "scatterctl fetch: --data-file %s\n", err);
            return EXIT_FAILED;
        }
    } else if (o->data) {
        size_t n = strlen(o->data);
        if (n > max) {
            fprintf(stderr, "scatterctl fetch: --data of %zu bytes is larger than the daemon's max_request_body (%" PRIu64
                            ")\n", n, max);
            return EXIT_FAILED;
        }
        d->body = (uint8_t *)strdup(o->data);
        if (!d->body)
            return EXIT_FAILED;
        d->body_len = n;
        d->has_body = 1;
    }
    return EXIT_OK;
}

int cmd_fetch(const char *sock, int argc, char **argv)
{
    fetch_opts o = {0};
    int code = parse_options(argc, argv, &o);
    if (!code && o.outdir && mkdir(o.outdir, 0755) && errno != EEXIST) {
        fprintf(stderr, "scatterctl fetch: cannot create -o '%s': %s\n", o.outdir, strerror(errno));
        code = EXIT_FAILED;
    }
    const char *input = o.input ? o.input : o.input_jsonl;
    run r = {.outdir = o.outdir, .quiet = o.quiet, .tty = isatty(STDERR_FILENO), .jsonl_input = o.input_jsonl != NULL,
             .input_name = input};
    fetch_input in;
    char err[256];
    memset(&in, 0, sizeof in);
    if (!code && fetch_input_open(&in, argv + optind, argc - optind, input, err, sizeof err)) {
        fprintf(stderr, "scatterctl fetch: %s: %s\n", o.input ? "-i" : "--input-jsonl", err);
        code = EXIT_FAILED;
    }
    if (!code && o.jsonl) {
        r.jsonl = strcmp(o.jsonl, "-") == 0 ? stdout : fopen(o.jsonl, "w");
        if (!r.jsonl) {
            fprintf(stderr, "scatterctl fetch: cannot open --jsonl '%s': %s\n", o.jsonl, strerror(errno));
            code = EXIT_FAILED;
        }
    }
    xport c = {0};
    if (!code && o.redis) {
        char rerr[512];
        int rc = rq_open(o.redis, o.stream ? o.stream : "scatter:tasks", (unsigned)o.window, &c.rq, rerr, sizeof rerr);
        if (rc) {
            fprintf(stderr, "scatterctl fetch: %s\n", rc == -ENOMEM ? "out of memory" : rerr);
            code = rc == -EINVAL ? EXIT_USAGE : EXIT_CONNECT;
        }
    } else if (!code) {
        code = cli_connect(sock, "fetch", 0, (unsigned)o.window, &c.sc);
    }
    if (!code)
        code = load_body(&o, &o.defs, &c);
    if (!code) {
        /* a line can carry no more than a request frame; a JSON line may escape its body
         * (base64: 4/3, \u escapes more), so it gets twice that. Over Redis: the default
         * max_frame, 4 MiB */
        uint64_t frame = c.sc ? sc_client_info(c.sc)->max_frame : 4u << 20;
        in.max_line = (size_t)(o.input_jsonl ? 2 * frame : frame);
        code = fetch_all(&r, &c, &in, &o.defs);
    }
    if (r.jsonl && r.jsonl != stdout)
        fclose(r.jsonl);
    else if (r.jsonl)
        fflush(stdout);
    sc_client_free(c.sc);
    rq_free(c.rq);
    fetch_input_close(&in);
    fr_spec_free(&o.defs);
    return code;
}

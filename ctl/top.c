/*
 * top: the daemon's status redrawn every second on a terminal, like top(1). One 'status'
 * request per refresh on a single connection (the status map already holds the hosts with
 * their circuits and proxy counts, so the 'hosts' op would only repeat them); the pool's
 * capacity comes from hello.
 *
 * Terminal handling is plain ANSI and termios (no curses: one screen of text redrawn whole
 * needs nothing more, and scatterctl stays free of another library): the alternate screen,
 * a hidden cursor, non-canonical input without echo so 'q' works without Enter. Signals
 * are taken through a signalfd polled beside standard input, so SIGWINCH redraws at once,
 * SIGINT/SIGTERM/SIGHUP quit through the same path that restores the terminal, Ctrl-Z
 * hands the terminal back before stopping, and no handler or global flag is needed. Not a terminal on standard output: plain frames, no
 * escape codes (one by default), like `top -b -n 1`.
 */
#include "ctl/top.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/proto.h"
#include "ctl/cli.h"

/* how long one status request may take before the daemon counts as gone */
#define TOP_CALL_TIMEOUT_MS 3000
#define TOP_LINE_MAX 1024

static uint64_t u(const msgpack_object *m, const char *k)
{
    uint64_t v = 0;
    if (m)
        proto_get_u64(m, k, &v);
    return v;
}

static double f(const msgpack_object *m, const char *k)
{
    double v = 0;
    if (m)
        proto_get_f64(m, k, &v);
    return v;
}

static proto_str str_of(const msgpack_object *m, const char *k)
{
    proto_str s = {"-", 1};
    if (m)
        proto_get_str(m, k, &s);
    return s;
}
#define S(m, k) (int)str_of(m, k).n, str_of(m, k).p

typedef struct {
    FILE *out;
    const top_view *v;
    unsigned used;
} frame;

/* One line, cut at the window's width; sgr (an SGR escape) colours it on a tty and, for the
 * table header, pad fills the bar to the full width. */
static void __attribute__((format(printf, 4, 5))) line(frame *fr, const char *sgr, int pad, const char *fmt, ...)
{
    const top_view *v = fr->v;
    if (v->rows && fr->used >= v->rows)
        return;
    char text[TOP_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t n = strlen(text);
    if (v->cols && n > v->cols)
        n = v->cols;
    if (v->tty) {
        /* lines are separated, not terminated, so the bottom row never scrolls the screen */
        if (fr->used)
            fputc('\n', fr->out);
        if (sgr)
            fputs(sgr, fr->out);
        fwrite(text, 1, n, fr->out);
        for (size_t i = n; pad && i < v->cols; i++)
            fputc(' ', fr->out);
        fputs(sgr ? "\033[0m\033[K" : "\033[K", fr->out);
    } else {
        fwrite(text, 1, n, fr->out);
        fputc('\n', fr->out);
    }
    fr->used++;
}

static void duration(char *b, size_t cap, uint64_t s)
{
    if (s >= 86400)
        snprintf(b, cap, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", s / 86400, s / 3600 % 24, s / 60 % 60);
    else if (s >= 3600)
        snprintf(b, cap, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(b, cap, "%02" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
}

void top_render(FILE *out, const msgpack_object *st, const top_view *v)
{
    frame fr = {.out = out, .v = v};
    const msgpack_object *px = proto_map_get(st, "proxies");
    const msgpack_object *tk = proto_map_get(st, "tasks");
    const msgpack_object *tp = proto_map_get(st, "throughput");
    const msgpack_object *hosts = proto_map_get(st, "hosts");
    uint32_t nh = hosts && hosts->type == MSGPACK_OBJECT_ARRAY ? hosts->via.array.size : 0;
    char up[32];
    duration(up, sizeof up, u(st, "uptime_s"));
    line(&fr, NULL, 0, "scatterd %.*s  up %s  workers %" PRIu64 "  %s", S(st, "version"), up, u(st, "workers"),
         v->clock ? v->clock : "");
    line(&fr, NULL, 0, "throughput  %.1f/s (1s)  %.1f/s (10s)  %.1f/s (60s)", f(tp, "1s"), f(tp, "10s"), f(tp, "60s"));
    line(&fr, NULL, 0, "success     %.1f%% (last minute)   avg latency %.0f ms", 100.0 * f(st, "success_rate_1m"),
         f(st, "avg_latency_ms"));
    uint64_t pending = u(tk, "pending");
    line(&fr, NULL, 0, "pool        %" PRIu64 " / %" PRIu64 " tasks (%.0f%%)   in flight %" PRIu64 " attempts", pending,
         v->pool_capacity, v->pool_capacity ? 100.0 * (double)pending / (double)v->pool_capacity : 0.0,
         u(st, "inflight"));
    line(&fr, NULL, 0, "tasks       %" PRIu64 " submitted  %" PRIu64 " completed  %" PRIu64 " failed  %" PRIu64 " cancelled",
         u(tk, "submitted"), u(tk, "completed"), u(tk, "failed"), u(tk, "cancelled"));
    line(&fr, NULL, 0, "proxies     %" PRIu64 " healthy / %" PRIu64 " cooling / %" PRIu64 " dead / %" PRIu64 " total",
         u(px, "healthy"), u(px, "cooling"), u(px, "dead"), u(px, "total"));
    line(&fr, NULL, 0, "%s", "");
    line(&fr, v->tty ? "\033[7m" : NULL, 1, "%-28s %-9s %7s %7s %7s %10s %9s %7s", "HOST", "CIRCUIT", "HEALTHY",
         "COOLING", "DEAD", "SUCCESS", "FAIL", "TGT_ERR");
    /* the rows left for hosts, the footer's kept */
    unsigned footer = v->tty ? 1 : 0;
    uint32_t room = nh;
    if (v->rows) {
        unsigned left = v->rows > fr.used + footer ? v->rows - fr.used - footer : 0;
        if (nh > left)
            room = left ? left - 1 : 0;
    }
    if (nh == 0)
        line(&fr, NULL, 0, "(no hosts yet)");
    for (uint32_t i = 0; i < room; i++) {
        const msgpack_object *h = &hosts->via.array.ptr[i];
        proto_str c = str_of(h, "circuit");
        const char *sgr = NULL;
        if (v->tty && c.n == 4 && memcmp(c.p, "open", 4) == 0)
            sgr = "\033[1;31m";
        else if (v->tty && c.n == 9 && memcmp(c.p, "half_open", 9) == 0)
            sgr = "\033[1;33m";
        line(&fr, sgr, 0, "%-28.*s %-9.*s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10" PRIu64 " %9" PRIu64 " %7" PRIu64,
             S(h, "name"), (int)c.n, c.p, u(h, "healthy"), u(h, "cooling"), u(h, "dead"), u(h, "success"), u(h, "fail"),
             u(h, "target_errors"));
    }
    if (room < nh)
        line(&fr, NULL, 0, "... %" PRIu32 " more host%s (a taller window shows them)", nh - room, nh - room > 1 ? "s" : "");
    if (v->tty) {
        /* the footer sits on the bottom row when the window is taller than the frame */
        while (v->rows && fr.used < v->rows - 1)
            line(&fr, NULL, 0, "%s", "");
        line(&fr, "\033[2m", 0, "q: quit   refresh every %.1f s   %" PRIu32 " host%s", v->interval_ms / 1000.0, nh,
             nh == 1 ? "" : "s");
    }
}

/* ---- the live view ---- */

typedef struct {
    sc_client *c;
    msgpack_unpacked reply;
    int have_reply;
    top_view view;
    char clock[16];
    int tty_in;           /* standard input is a terminal: keys are read */
    struct termios saved, raw;
    int term_set, screen_set;
    int sfd;
    sigset_t saved_mask;
    int mask_set;
} top_ctx;

/* Asks for a status. EXIT_OK, or EXIT_CONNECT (the daemon went away or does not answer),
 * EXIT_FAILED (it answered an error), with the reason in err. */
static int sample(top_ctx *t, char *err, size_t cap)
{
    if (t->have_reply)
        msgpack_unpacked_destroy(&t->reply);
    t->have_reply = 0;
    char why[256] = "";
    int rc = sc_call(t->c, "status", 0, 0, NULL, TOP_CALL_TIMEOUT_MS, &t->reply, why, sizeof why);
    if (rc) {
        snprintf(err, cap, "lost the daemon: %s", *why ? why : strerror(-rc));
        return EXIT_CONNECT;
    }
    t->have_reply = 1;
    int ok = 0;
    proto_get_bool(&t->reply.data, "ok", &ok);
    if (!ok || !proto_map_get(&t->reply.data, "status")) {
        snprintf(err, cap, "status refused: %.*s: %.*s", S(&t->reply.data, "error"), S(&t->reply.data, "message"));
        return EXIT_FAILED;
    }
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(t->clock, sizeof t->clock, "%H:%M:%S", &tm);
    t->view.clock = t->clock;
    return EXIT_OK;
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Draws the last sample into the current window size, in one write so it does not flicker. */
static void draw(top_ctx *t)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        t->view.cols = ws.ws_col;
        t->view.rows = ws.ws_row;
    } else {
        t->view.cols = 80;
        t->view.rows = 24;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return;
    fputs("\033[H", m);
    top_render(m, proto_map_get(&t->reply.data, "status"), &t->view);
    fputs("\033[J", m);
    if (fclose(m) == 0)
        write_all(buf, len);
    free(buf);
}

static const char SCREEN_ON[] = "\033[?1049h\033[?25l\033[H\033[2J";
static const char SCREEN_OFF[] = "\033[0m\033[?25h\033[?1049l";

/* Our screen and key modes on, or the user's back (around a Ctrl-Z stop, and at the end). */
static void screen(top_ctx *t, int on)
{
    if (t->term_set)
        tcsetattr(STDIN_FILENO, TCSANOW, on ? &t->raw : &t->saved);
    if (on)
        write_all(SCREEN_ON, sizeof SCREEN_ON - 1);
    else
        write_all(SCREEN_OFF, sizeof SCREEN_OFF - 1);
}

static int term_enter(top_ctx *t, char *err, size_t cap)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGWINCH);
    sigaddset(&set, SIGTSTP);
    if (sigprocmask(SIG_BLOCK, &set, &t->saved_mask)) {
        snprintf(err, cap, "sigprocmask: %s", strerror(errno));
        return -1;
    }
    t->mask_set = 1;
    t->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (t->sfd < 0) {
        snprintf(err, cap, "signalfd: %s", strerror(errno));
        return -1;
    }
    t->tty_in = isatty(STDIN_FILENO);
    if (t->tty_in && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
        t->raw = t->saved;
        t->raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* ISIG kept: Ctrl-C arrives as SIGINT */
        t->raw.c_cc[VMIN] = 1;
        t->raw.c_cc[VTIME] = 0;
        t->term_set = 1;
    }
    screen(t, 1);
    t->screen_set = 1;
    return 0;
}

static void term_leave(top_ctx *t)
{
    if (t->screen_set)
        screen(t, 0);
    if (t->sfd >= 0)
        close(t->sfd);
    if (t->mask_set)
        sigprocmask(SIG_SETMASK, &t->saved_mask, NULL);
    t->screen_set = t->term_set = t->mask_set = 0;
    t->sfd = -1;
}

/* Ctrl-Z: the shell gets its terminal back as it was; on fg we take it again and redraw.
 * SIGSTOP stands in for the blocked SIGTSTP (same effect, and it cannot be caught). */
static void suspend(top_ctx *t)
{
    screen(t, 0);
    kill(getpid(), SIGSTOP);
    screen(t, 1);
    draw(t);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the next refresh, redrawing on SIGWINCH. 1 to go on, 0 to quit. */
static int wait_keys(top_ctx *t, int64_t until)
{
    for (int64_t now; (now = now_ms()) < until;) {
        struct pollfd p[2] = {{.fd = t->sfd, .events = POLLIN}, {.fd = t->tty_in ? STDIN_FILENO : -1, .events = POLLIN}};
        int n = poll(p, 2, (int)(until - now));
        if (n < 0 && errno != EINTR)
            return 0;
        if (n <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(t->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGWINCH)
                    draw(t);
                else if (si.ssi_signo == SIGTSTP)
                    suspend(t);
                else
                    return 0;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char k[64];
            ssize_t r = read(STDIN_FILENO, k, sizeof k);
            if (r <= 0)
                t->tty_in = 0; /* the terminal went away: signals still quit */
            for (ssize_t i = 0; i < r; i++)
                if (k[i] == 'q' || k[i] == 'Q')
                    return 0;
        }
    }
    return 1;
}

int cmd_top(const char *sock, int argc, char **argv)
{
    static const struct option L[] = {
        {"delay", required_argument, 0, 'd'}, {"iterations", required_argument, 0, 'n'}, {0, 0, 0, 0}};
    uint64_t delay_ms = 1000, iterations = 0;
    int has_iterations = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:d:n:", L, NULL)) != -1) {
        if (ch == 'd') {
            if (cli_seconds_ms("top", "--delay", optarg, &delay_ms))
                return EXIT_USAGE;
            if (delay_ms < 100 || delay_ms > 3600000)
                return cli_usage_error("top", "bad --delay '%s': from 0.1 to 3600 seconds", optarg);
        } else if (ch == 'n') {
            if (cli_uint("top", "--iterations", optarg, 1, UINT32_MAX, &iterations))
                return EXIT_USAGE;
            has_iterations = 1;
        } else {
            return cli_bad_option("top", ch, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("top", "unexpected argument '%s'", argv[optind]);
    int tty = isatty(STDOUT_FILENO);
    if (!tty && !has_iterations)
        iterations = 1;
    top_ctx t = {.sfd = -1, .view = {.interval_ms = (unsigned)delay_ms, .tty = tty}};
    int code = cli_connect(sock, "top", 1, 1, &t.c);
    if (code)
        return code;
    t.view.pool_capacity = sc_client_info(t.c)->pool_capacity;
    char err[512] = "";
    if (tty && term_enter(&t, err, sizeof err))
        code = EXIT_FAILED;
    for (uint64_t i = 0; !code && (!iterations || i < iterations); i++) {
        int64_t next = now_ms() + (int64_t)delay_ms;
        code = sample(&t, err, sizeof err);
        if (code)
            break;
        if (tty) {
            draw(&t);
        } else {
            if (i)
                putchar('\n');
            top_render(stdout, proto_map_get(&t.reply.data, "status"), &t.view);
            fflush(stdout);
        }
        if (iterations && i + 1 == iterations)
            break;
        if (tty) {
            if (!wait_keys(&t, next))
                break;
        } else {
            for (int64_t now; (now = now_ms()) < next;)
                poll(NULL, 0, (int)(next - now));
        }
    }
    term_leave(&t);
    if (code)
        fprintf(stderr, "scatterctl top: %s\n", err);
    if (t.have_reply)
        msgpack_unpacked_destroy(&t.reply);
    sc_client_free(t.c);
    return code;
}

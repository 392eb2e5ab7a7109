/*
 * main.c — scatter-farm: command line, start-up, output files, shutdown.
 *
 * Why: tests and benchmarks need one command that builds a reproducible, offline "internet"
 * of misbehaving SOCKS5 proxies and rate-limited web targets, tells them where everything is
 * (proxies.txt, urls.txt, truth.json) and reports what happened when it is stopped. This file
 * turns options into a validated struct farm_opts, starts every listener, writes the files
 * only once all listeners are up (the pid file last, so "pid file exists" means "ready"), runs
 * the libev default loop, and on SIGTERM/SIGINT prints the summary and frees everything.
 *
 * Signals are ev_signal watchers whose data points at the farm context, so no file-static
 * state is needed.
 */
#include "farm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MIX "good=30,slow=10,flaky=15,refuse=15,blackhole=10,banned=10,captcha=10"

static void usage(FILE *fp)
{
    fputs(
        "NAME\n"
        "    scatter-farm - loopback farm of misbehaving SOCKS5 proxies and rate-limited\n"
        "                   HTTP targets, the testing ground of scatter\n"
        "\n"
        "SYNOPSIS\n"
        "    scatter-farm [OPTION]... --out DIR\n"
        "\n"
        "DESCRIPTION\n"
        "    One process, one libev loop. Serves N SOCKS5 proxies on consecutive ports and one\n"
        "    or more HTTP or HTTPS targets. Every address it listens on, binds to or connects\n"
        "    to must be in 127.0.0.0/8; anything else is refused (exit status 2 for options,\n"
        "    SOCKS reply 0x02 at run time). Proxy i connects to targets from its own source\n"
        "    address 127.1.(i/250).(i%250+1), so a target tells proxies apart as a site tells\n"
        "    IPs apart. A bed larger than one process may hold (its descriptor limit) runs as\n"
        "    several: one with the targets, the others with --no-targets and their own\n"
        "    --source-base and ports, all pointed at the same targets by their clients.\n"
        "\n"
        "PROXY OPTIONS\n"
        "    --proxies N            number of proxies (1..20000; default 100, or the sum of\n"
        "                           --mix-counts)\n"
        "    --proxy-ip IP          listen address of the proxies (default 127.0.0.1)\n"
        "    --proxy-base-port P    proxy i listens on P+i (default 21000)\n"
        "    --source-base B        proxy i connects from the source address of proxy B+i\n"
        "                           (default 0), so several farm processes serving one\n"
        "                           bed never share a source address\n"
        "    --mix SPEC             behaviour shares as NAME=PERCENT,... adding up to 100\n"
        "                           (default " DEFAULT_MIX ").\n"
        "                           Behaviours:\n"
        "                             good      relays faithfully after --good-latency-ms\n"
        "                             slow      waits --slow-ms before connecting\n"
        "                             flaky     drops --flaky-drop of connections, before the\n"
        "                                       SOCKS reply or mid-stream; the rest are good\n"
        "                             refuse    nothing listens: connection refused\n"
        "                             blackhole accepts, never answers; closes after\n"
        "                                       --blackhole-ms or when the client does\n"
        "                             banned    relays; targets answer 403 to its address\n"
        "                             captcha   relays; targets answer 200 with a captcha page\n"
        "                             cut       relays the first answer of each connection;\n"
        "                                       on a kept-alive one it forwards the next request\n"
        "                                       and closes as the target starts to answer (the\n"
        "                                       request arrived, its answer never comes back)\n"
        "    --mix-counts           read the values of --mix as proxy counts, not percentages\n"
        "    --seed N               seed of every random choice (default 1): same seed, same\n"
        "                           ports, behaviours and file order\n"
        "    --auth USER:PASS       require RFC 1929 username/password on every proxy;\n"
        "                           proxies.txt then carries socks5://USER:PASS@...\n"
        "    --good-latency-ms N    delay before connecting, for good, flaky, banned and\n"
        "                           captcha proxies (default 5)\n"
        "    --slow-ms MIN-MAX      delay range of slow proxies, uniform (default 1000-3000;\n"
        "                           a single N means N-N)\n"
        "    --flaky-drop F         share of flaky connections dropped, 0..1 (default 0.3)\n"
        "    --blackhole-ms N       how long a blackhole keeps a connection (default 60000)\n"
        "\n"
        "TARGET OPTIONS\n"
        "    --target IP:PORT       an HTTP target; repeat for several (up to 16 targets in\n"
        "                           all; default 127.0.0.10:18080 when neither --target\n"
        "                           nor --tls-target is given)\n"
        "    --no-targets           serve proxies only (the targets run in another farm\n"
        "                           process); the banned and captcha behaviours need this\n"
        "                           process's targets and are refused; no urls.txt lines\n"
        "    --tls-target IP:PORT   an HTTPS target serving the same site over TLS, with the\n"
        "                           same rate limit, counters and control paths; repeatable\n"
        "    --tls-cert FILE        PEM certificate (chain) of the TLS targets; needs\n"
        "                           --tls-key. Without both, the farm generates an EC P-256\n"
        "                           key and a self-signed certificate for the TLS target IPs\n"
        "                           (CN and subjectAltName) at start and writes it to\n"
        "                           DIR/tls-ca.pem for clients to trust (curl --cacert)\n"
        "    --tls-key FILE         PEM private key of --tls-cert\n"
        "    --interval-ms N        minimum interval between two requests of one source\n"
        "                           address on one target; closer ones get 429 and count a\n"
        "                           violation (default 500; 0 = no limit)\n"
        "    --error-rate F         share of item requests answered 503, 0..1 (default 0)\n"
        "    --max-items N          items are /item/0 .. /item/N-1 (default 1000000)\n"
        "    Control paths on every target (not counted, not rate limited):\n"
        "      GET /__farm/stats                 JSON counters of this target\n"
        "      GET /__farm/reset                 zero the counters\n"
        "      GET /__farm/set?error_rate=F&interval_ms=N   change settings at run time\n"
        "\n"
        "OUTPUT OPTIONS\n"
        "    --out DIR              write proxies.txt, urls.txt, truth.json, truth.tsv,\n"
        "                           targets.txt, tls-targets.txt and tls-ca.pem (with TLS\n"
        "                           targets), requests.log, summary.json (on exit) and pid\n"
        "                           (last, once every listener is up) into DIR (created if\n"
        "                           missing). Without --out nothing is written.\n"
        "    --urls N               lines of urls.txt, round-robin over the targets\n"
        "                           (http:// or https:// by the kind of target)\n"
        "                           (default 1000)\n"
        "    --quiet                no start-up line on stderr\n"
        "    --help                 this text\n"
        "    --version              version\n"
        "\n"
        "SIGNALS\n"
        "    SIGTERM, SIGINT: print the JSON summary of all targets to stdout, write\n"
        "    DIR/summary.json, flush DIR/requests.log, remove DIR/pid, exit 0.\n"
        "\n"
        "EXIT STATUS\n"
        "    0 after a signal, 1 on a start-up failure (port in use...), 2 on a bad option\n"
        "    (the message names the option and the value; also a --tls-cert or --tls-key\n"
        "    that cannot be loaded or do not match).\n"
        "\n"
        "EXAMPLE\n"
        "    scatter-farm --proxies 200 --seed 7 --target 127.0.0.10:18080 \\\n"
        "                 --target 127.0.0.11:18080 --interval-ms 500 --out /tmp/farm\n"
        "    scatter-farm --target 127.0.0.10:18080 --tls-target 127.0.0.10:18443 --out /tmp/farm\n"
        "    curl --cacert /tmp/farm/tls-ca.pem --socks5 127.0.0.1:21000 \\\n"
        "         https://127.0.0.10:18443/item/1\n",
        fp);
}

static _Noreturn void bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "scatter-farm: bad value '%s' for %s: %s\n", val, opt, why);
    exit(2);
}

static unsigned long parse_uint(const char *opt, const char *val, unsigned long min,
                                unsigned long max)
{
    char *end;
    errno = 0;
    if (val[0] < '0' || val[0] > '9')
        bad(opt, val, "not a non-negative integer");
    unsigned long v = strtoul(val, &end, 10);
    if (errno || *end)
        bad(opt, val, "not a non-negative integer");
    if (v < min || v > max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %lu and %lu", min, max);
        bad(opt, val, why);
    }
    return v;
}

static double parse_share(const char *opt, const char *val)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || *end || end == val || !(v >= 0.0 && v <= 1.0))
        bad(opt, val, "must be a number between 0 and 1");
    return v;
}

enum {
    O_PROXIES = 256, O_PROXY_IP, O_BASE, O_MIX, O_MIX_COUNTS, O_SEED, O_AUTH, O_GOOD, O_SLOW,
    O_FLAKY, O_BLACKHOLE, O_TARGET, O_INTERVAL, O_ERROR, O_MAX_ITEMS, O_URLS, O_OUT, O_QUIET,
    O_HELP, O_VERSION, O_TLS_TARGET, O_TLS_CERT, O_TLS_KEY, O_SOURCE_BASE, O_NO_TARGETS
};

static const struct option long_opts[] = {
    {"proxies", required_argument, NULL, O_PROXIES},
    {"proxy-ip", required_argument, NULL, O_PROXY_IP},
    {"proxy-base-port", required_argument, NULL, O_BASE},
    {"source-base", required_argument, NULL, O_SOURCE_BASE},
    {"no-targets", no_argument, NULL, O_NO_TARGETS},
    {"mix", required_argument, NULL, O_MIX},
    {"mix-counts", no_argument, NULL, O_MIX_COUNTS},
    {"seed", required_argument, NULL, O_SEED},
    {"auth", required_argument, NULL, O_AUTH},
    {"good-latency-ms", required_argument, NULL, O_GOOD},
    {"slow-ms", required_argument, NULL, O_SLOW},
    {"flaky-drop", required_argument, NULL, O_FLAKY},
    {"blackhole-ms", required_argument, NULL, O_BLACKHOLE},
    {"target", required_argument, NULL, O_TARGET},
    {"tls-target", required_argument, NULL, O_TLS_TARGET},
    {"tls-cert", required_argument, NULL, O_TLS_CERT},
    {"tls-key", required_argument, NULL, O_TLS_KEY},
    {"interval-ms", required_argument, NULL, O_INTERVAL},
    {"error-rate", required_argument, NULL, O_ERROR},
    {"max-items", required_argument, NULL, O_MAX_ITEMS},
    {"urls", required_argument, NULL, O_URLS},
    {"out", required_argument, NULL, O_OUT},
    {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

static void parse_args(int argc, char **argv, struct farm_opts *o)
{
    memset(o, 0, sizeof *o);
    o->nproxies = 100;
    o->proxy_ip.s_addr = htonl(INADDR_LOOPBACK);
    o->base_port = 21000;
    o->mix = DEFAULT_MIX;
    o->seed = 1;
    o->good_latency_ms = 5;
    o->slow_min_ms = 1000;
    o->slow_max_ms = 3000;
    o->flaky_drop = 0.3;
    o->blackhole_ms = 60000;
    o->interval_ms = 500;
    o->max_items = 1000000;
    o->urls = 1000;

    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (c) {
        case O_PROXIES:
            o->nproxies = (unsigned)parse_uint("--proxies", optarg, 1, FARM_MAX_PROXIES);
            o->nproxies_set = true;
            break;
        case O_PROXY_IP:
            if (farm_parse_ipv4(optarg, &o->proxy_ip) != 0)
                bad("--proxy-ip", optarg, "not an IPv4 address");
            if (!farm_is_loopback(o->proxy_ip))
                bad("--proxy-ip", optarg, "not in 127.0.0.0/8 (the farm is loopback only)");
            break;
        case O_BASE:
            o->base_port = (unsigned)parse_uint("--proxy-base-port", optarg, 1, 65535);
            break;
        case O_SOURCE_BASE:
            o->source_base = (unsigned)parse_uint("--source-base", optarg, 0, FARM_MAX_SOURCES - 1);
            break;
        case O_NO_TARGETS: o->no_targets = true; break;
        case O_MIX: o->mix = optarg; break;
        case O_MIX_COUNTS: o->mix_counts = true; break;
        case O_SEED: {
            char *end;
            errno = 0;
            if (optarg[0] < '0' || optarg[0] > '9')
                bad("--seed", optarg, "not a non-negative integer");
            o->seed = strtoull(optarg, &end, 10);
            if (errno || *end)
                bad("--seed", optarg, "not a non-negative integer");
            break;
        }
        case O_AUTH: {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1])
                bad("--auth", optarg, "expected USER:PASS, both non-empty");
            if (colon - optarg > 255 || strlen(colon + 1) > 255)
                bad("--auth", optarg, "user and password are at most 255 bytes each");
            for (const char *p = optarg; *p; p++)
                if (*p <= ' ' || *p == '@' || *p == '/' || *p == '%' || *p >= 127)
                    bad("--auth", optarg, "use printable characters other than space @ / %");
            free(o->auth_buf);
            o->auth_buf = strdup(optarg);
            if (!o->auth_buf)
                exit(1);
            o->auth_buf[colon - optarg] = '\0';
            o->auth_user = o->auth_buf;
            o->auth_pass = o->auth_buf + (colon - optarg) + 1;
            break;
        }
        case O_GOOD:
            o->good_latency_ms = (unsigned)parse_uint("--good-latency-ms", optarg, 0, 600000);
            break;
        case O_SLOW: {
            char tmp[64];
            if (strlen(optarg) >= sizeof tmp)
                bad("--slow-ms", optarg, "expected MIN-MAX");
            strcpy(tmp, optarg);
            char *dash = strchr(tmp, '-');
            if (dash) {
                *dash = '\0';
                o->slow_min_ms = (unsigned)parse_uint("--slow-ms", tmp, 0, 600000);
                o->slow_max_ms = (unsigned)parse_uint("--slow-ms", dash + 1, 0, 600000);
            } else {
                o->slow_min_ms = o->slow_max_ms = (unsigned)parse_uint("--slow-ms", tmp, 0, 600000);
            }
            if (o->slow_min_ms > o->slow_max_ms)
                bad("--slow-ms", optarg, "MIN is larger than MAX");
            break;
        }
        case O_FLAKY: o->flaky_drop = parse_share("--flaky-drop", optarg); break;
        case O_BLACKHOLE:
            o->blackhole_ms = (unsigned)parse_uint("--blackhole-ms", optarg, 1, 86400000);
            break;
        case O_TARGET:
        case O_TLS_TARGET: {
            const char *name = c == O_TARGET ? "--target" : "--tls-target";
            if (o->ntargets == FARM_MAX_TARGETS)
                bad(name, optarg, "too many targets (at most 16, plain and TLS together)");
            if (farm_parse_hostport(optarg, &o->targets[o->ntargets]) != 0)
                bad(name, optarg, "expected IPv4:PORT");
            if (!farm_is_loopback(o->targets[o->ntargets].sin_addr))
                bad(name, optarg, "not in 127.0.0.0/8 (the farm is loopback only)");
            o->target_tls[o->ntargets] = c == O_TLS_TARGET;
            o->ntls += c == O_TLS_TARGET;
            o->ntargets++;
            break;
        }
        case O_TLS_CERT:
        case O_TLS_KEY:
            if (!optarg[0])
                bad(c == O_TLS_CERT ? "--tls-cert" : "--tls-key", optarg, "empty file name");
            *(c == O_TLS_CERT ? &o->tls_cert : &o->tls_key) = optarg;
            break;
        case O_INTERVAL:
            o->interval_ms = (unsigned)parse_uint("--interval-ms", optarg, 0, 3600000);
            break;
        case O_ERROR: o->error_rate = parse_share("--error-rate", optarg); break;
        case O_MAX_ITEMS:
            o->max_items = (unsigned)parse_uint("--max-items", optarg, 1, 100000000);
            break;
        case O_URLS: o->urls = (unsigned)parse_uint("--urls", optarg, 0, 100000000); break;
        case O_OUT:
            if (!optarg[0])
                bad("--out", optarg, "empty directory name");
            o->out_dir = optarg;
            break;
        case O_QUIET: o->quiet = true; break;
        case 'h':
        case O_HELP: usage(stdout); free(o->auth_buf); exit(0);
        case O_VERSION: printf("scatter-farm %s\n", SCATTER_VERSION); free(o->auth_buf); exit(0);
        default:
            if (optopt)
                fprintf(stderr, "scatter-farm: option '-%c' is unknown or lacks its value\n",
                        optopt);
            else
                fprintf(stderr, "scatter-farm: option '%s' is unknown or lacks its value\n",
                        argv[optind - 1]);
            fprintf(stderr, "Try 'scatter-farm --help'.\n");
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scatter-farm: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (!o->tls_cert != !o->tls_key)
        bad(o->tls_cert ? "--tls-cert" : "--tls-key", o->tls_cert ? o->tls_cert : o->tls_key,
            "--tls-cert and --tls-key go together");
    if (o->tls_cert && o->ntls == 0)
        bad("--tls-cert", o->tls_cert, "there is no --tls-target to use it");
    if (o->no_targets && o->ntargets)
        bad("--no-targets", o->ntargets == o->ntls ? "--tls-target" : "--target",
            "a farm with --no-targets serves no target");
    if (o->no_targets)
        o->urls = 0;
    else if (o->ntargets == 0) {
        farm_parse_hostport("127.0.0.10:18080", &o->targets[0]);
        o->ntargets = 1;
    }
    if (o->mix_counts && !o->nproxies_set)
        o->nproxies = 0; /* taken from the counts */
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static FILE *open_out(const struct farm *f, const char *name, char *path, size_t plen)
{
    snprintf(path, plen, "%s/%s", f->o.out_dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp)
        fprintf(stderr, "scatter-farm: cannot write %s: %s\n", path, strerror(errno));
    return fp;
}

static void proxy_url(const struct farm *f, const struct proxy *p, char *buf, size_t n)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &f->o.proxy_ip, ip, sizeof ip);
    if (f->o.auth_user)
        snprintf(buf, n, "socks5://%s:%s@%s:%u", f->o.auth_user, f->o.auth_pass, ip, p->port);
    else
        snprintf(buf, n, "socks5://%s:%u", ip, p->port);
}

/* Writes every output file but pid. order[] is the shuffled proxies.txt order. */
static int write_files(struct farm *f, const unsigned *order)
{
    char path[4096], url[600];
    FILE *fp;

    if (!(fp = open_out(f, "proxies.txt", path, sizeof path)))
        return -1;
    for (unsigned i = 0; i < f->nproxies; i++) {
        proxy_url(f, &f->proxies[order[i]], url, sizeof url);
        fprintf(fp, "%s\n", url);
    }
    if (fclose(fp) != 0)
        return -1;

    if (!(fp = open_out(f, "urls.txt", path, sizeof path)))
        return -1;
    for (unsigned i = 0; i < f->o.urls; i++) {
        const struct target *t = &f->targets[i % f->ntargets];
        fprintf(fp, "%s://%s/item/%u\n", t->tls ? "https" : "http", t->name, i % f->o.max_items);
    }
    if (fclose(fp) != 0)
        return -1;

    /* targets.txt stays plain-only (its readers speak http to it); TLS ones are listed apart */
    if (!(fp = open_out(f, "targets.txt", path, sizeof path)))
        return -1;
    for (unsigned i = 0; i < f->ntargets; i++)
        if (!f->targets[i].tls)
            fprintf(fp, "%s\n", f->targets[i].name);
    if (fclose(fp) != 0)
        return -1;
    if (f->o.ntls) {
        if (!(fp = open_out(f, "tls-targets.txt", path, sizeof path)))
            return -1;
        for (unsigned i = 0; i < f->ntargets; i++)
            if (f->targets[i].tls)
                fprintf(fp, "%s\n", f->targets[i].name);
        if (fclose(fp) != 0)
            return -1;
    }
    if (f->tls_ca_pem) {
        if (!(fp = open_out(f, "tls-ca.pem", path, sizeof path)))
            return -1;
        fputs(f->tls_ca_pem, fp);
        if (fclose(fp) != 0)
            return -1;
    } else {
        /* a DIR reused from an earlier run must not offer a CA this farm does not serve */
        snprintf(path, sizeof path, "%s/tls-ca.pem", f->o.out_dir);
        unlink(path);
    }
    if (!f->o.ntls) {
        snprintf(path, sizeof path, "%s/tls-targets.txt", f->o.out_dir);
        unlink(path);
    }

    /* truth.tsv: the same facts as truth.json, for shell scripts without jq. */
    FILE *tsv = open_out(f, "truth.tsv", path, sizeof path);
    if (!tsv)
        return -1;
    if (!(fp = open_out(f, "truth.json", path, sizeof path))) {
        fclose(tsv);
        return -1;
    }
    fprintf(fp, "{\n  \"seed\": %llu,\n  \"interval_ms\": %u,\n  \"targets\": [",
            (unsigned long long)f->o.seed, f->o.interval_ms);
    for (unsigned i = 0, k = 0; i < f->ntargets; i++)
        if (!f->targets[i].tls)
            fprintf(fp, "%s\"%s\"", k++ ? ", " : "", f->targets[i].name);
    fprintf(fp, "],\n  \"tls_targets\": [");
    for (unsigned i = 0, k = 0; i < f->ntargets; i++)
        if (f->targets[i].tls)
            fprintf(fp, "%s\"%s\"", k++ ? ", " : "", f->targets[i].name);
    fprintf(fp, "],\n  \"proxies\": [\n");
    for (unsigned i = 0; i < f->nproxies; i++) {
        const struct proxy *p = &f->proxies[i];
        char src[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &p->source, src, sizeof src);
        proxy_url(f, p, url, sizeof url);
        fprintf(fp,
                "    {\"url\": \"%s\", \"port\": %u, \"behaviour\": \"%s\", \"source\": \"%s\"}%s\n",
                url, p->port, behaviour_name(p->beh), src, i + 1 < f->nproxies ? "," : "");
        fprintf(tsv, "%s\t%s\t%s\t%u\n", url, behaviour_name(p->beh), src, p->port);
    }
    fprintf(fp, "  ]\n}\n");
    int r = 0;
    if (fclose(fp) != 0)
        r = -1;
    if (fclose(tsv) != 0)
        r = -1;
    return r;
}

static int write_pid(struct farm *f)
{
    char path[4096], tmp[4096];
    snprintf(path, sizeof path, "%s/pid", f->o.out_dir);
    snprintf(tmp, sizeof tmp, "%s/pid.tmp", f->o.out_dir);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return -1;
    fprintf(fp, "%ld\n", (long)getpid());
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void shutdown_farm(struct farm *f, bool print_summary)
{
    while (f->conns.next != &f->conns)
        f->conns.next->destroy(f->conns.next);
    for (unsigned i = 0; i < f->nproxies; i++)
        socks_stop(f, &f->proxies[i]);
    if (print_summary) {
        char *s = stats_summary_json(f);
        if (s) {
            printf("%s\n", s);
            fflush(stdout);
            if (f->o.out_dir) {
                char path[4096];
                snprintf(path, sizeof path, "%s/summary.json", f->o.out_dir);
                FILE *fp = fopen(path, "w");
                if (fp) {
                    fprintf(fp, "%s\n", s);
                    fclose(fp);
                }
            }
            free(s);
        }
    }
    for (unsigned i = 0; i < f->ntargets; i++)
        target_stop(f, &f->targets[i]);
    tls_free(f);
    if (f->reqlog)
        fclose(f->reqlog);
    free(f->reqlog_buf);
    if (f->o.out_dir && print_summary) {
        char path[4096];
        snprintf(path, sizeof path, "%s/pid", f->o.out_dir);
        unlink(path);
    }
    ev_signal_stop(f->loop, &f->sigterm_w);
    ev_signal_stop(f->loop, &f->sigint_w);
    free(f->proxies);
    free(f->o.auth_buf);
    ev_loop_destroy(f->loop);
}

int main(int argc, char **argv)
{
    struct farm farm;
    struct farm *f = &farm;
    char err[512];
    memset(f, 0, sizeof *f);
    f->conns.next = f->conns.prev = &f->conns;
    parse_args(argc, argv, &f->o);

    unsigned counts[BEH_COUNT] = {0};
    unsigned n = f->o.nproxies;
    if (mix_parse(f->o.mix, f->o.mix_counts, &n, counts, err, sizeof err) != 0) {
        fprintf(stderr, "scatter-farm: %s\n", err);
        free(f->o.auth_buf);
        return 2;
    }
    f->o.nproxies = n;
    if (f->o.no_targets && (counts[BEH_BANNED] || counts[BEH_CAPTCHA])) {
        fprintf(stderr, "scatter-farm: bad value '%s' for --mix: banned and captcha proxies are "
                        "told apart by this process's targets, and --no-targets has none\n", f->o.mix);
        free(f->o.auth_buf);
        return 2;
    }
    if (f->o.source_base + n > FARM_MAX_SOURCES) {
        fprintf(stderr, "scatter-farm: bad value '%u' for --source-base: %u proxies would need "
                        "source addresses past the %u the farm has\n", f->o.source_base, n, FARM_MAX_SOURCES);
        free(f->o.auth_buf);
        return 2;
    }
    if (n == 0 || n > FARM_MAX_PROXIES || f->o.base_port + n - 1 > 65535) {
        fprintf(stderr, "scatter-farm: bad value '%u' for --proxy-base-port: %u proxies would "
                        "need ports up to %u\n", f->o.base_port, n, f->o.base_port + n - 1);
        free(f->o.auth_buf);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    f->loop = ev_default_loop(EVFLAG_AUTO);
    if (!f->loop) {
        fprintf(stderr, "scatter-farm: cannot initialise libev\n");
        free(f->o.auth_buf);
        return 1;
    }

    /* Deterministic layout: behaviours and proxies.txt order come from the seed alone. */
    struct rng layout;
    rng_seed(&layout, f->o.seed);
    rng_seed(&f->rng, f->o.seed ^ 0x5bd1e9955bd1e995ull);
    enum behaviour *behs = calloc(n, sizeof *behs);
    unsigned *order = calloc(n, sizeof *order);
    f->proxies = calloc(n, sizeof *f->proxies);
    if (!behs || !order || !f->proxies) {
        fprintf(stderr, "scatter-farm: out of memory\n");
        return 1;
    }
    mix_assign(counts, behs, n, &layout);
    for (unsigned i = 0; i < n; i++)
        order[i] = i;
    for (unsigned i = n; i > 1; i--) {
        unsigned j = (unsigned)rng_below(&layout, i);
        unsigned t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }

    int rc = 0;
    f->nproxies = n;
    for (unsigned i = 0; i < n; i++) {
        struct proxy *p = &f->proxies[i];
        p->index = i;
        p->beh = behs[i];
        p->port = (uint16_t)(f->o.base_port + i);
        p->fd = -1;
    }
    if (f->o.ntls) {
        int r = tls_setup(f, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "scatter-farm: %s\n", err);
            rc = r == -EINVAL ? 2 : 1;
            goto out;
        }
    }
    for (unsigned i = 0; i < f->o.ntargets; i++) {
        struct target *t = &f->targets[i];
        t->index = i;
        t->addr = f->o.targets[i];
        t->tls = f->o.target_tls[i];
        t->fd = -1;
        if (target_start(f, t, err, sizeof err) != 0) {
            fprintf(stderr, "scatter-farm: target %u: %s\n", i, err);
            f->ntargets = i + 1;
            rc = 1;
            goto out;
        }
        f->ntargets = i + 1;
    }
    for (unsigned i = 0; i < n; i++) {
        if (socks_start(f, &f->proxies[i], err, sizeof err) != 0) {
            fprintf(stderr, "scatter-farm: proxy %u (%s): %s\n", i,
                    behaviour_name(f->proxies[i].beh), err);
            rc = 1;
            goto out;
        }
    }

    if (f->o.out_dir) {
        if (mkdir(f->o.out_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "scatter-farm: cannot create --out '%s': %s\n", f->o.out_dir,
                    strerror(errno));
            rc = 1;
            goto out;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/requests.log", f->o.out_dir);
        f->reqlog = fopen(path, "w");
        f->reqlog_buf = malloc(1 << 20);
        if (!f->reqlog || !f->reqlog_buf) {
            fprintf(stderr, "scatter-farm: cannot write %s\n", path);
            rc = 1;
            goto out;
        }
        setvbuf(f->reqlog, f->reqlog_buf, _IOFBF, 1 << 20);
        if (write_files(f, order) != 0 || write_pid(f) != 0) {
            fprintf(stderr, "scatter-farm: cannot write the output files in '%s'\n",
                    f->o.out_dir);
            rc = 1;
            goto out;
        }
    }

    ev_signal_init(&f->sigterm_w, on_signal, SIGTERM);
    ev_signal_init(&f->sigint_w, on_signal, SIGINT);
    f->sigterm_w.data = f->sigint_w.data = f;
    ev_signal_start(f->loop, &f->sigterm_w);
    ev_signal_start(f->loop, &f->sigint_w);
    if (!f->o.quiet) {
        fprintf(stderr, "scatter-farm: %u proxies on ports %u-%u, %u target(s), pid %ld\n", n,
                f->o.base_port, f->o.base_port + n - 1, f->ntargets, (long)getpid());
    }
    free(behs);
    free(order);
    behs = NULL;
    order = NULL;
    ev_run(f->loop, 0);
    shutdown_farm(f, true);
    return 0;

out:
    free(behs);
    free(order);
    shutdown_farm(f, false);
    return rc;
}

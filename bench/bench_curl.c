/*
 * bench_curl.c — plain libcurl multi clients for scripts/bench.sh.
 *
 *   bench_curl raw   -p PROXIES -u URLS -o OUT.jsonl [-c CONC] [-j PROCS] [-t LIMIT_S]
 *   bench_curl naive -p PROXIES -u URLS -o OUT.jsonl [-c CONC] [-j PROCS] [-t LIMIT_S]
 *                    [-a ATTEMPTS] [-b BLOCKED_WORD]
 *   bench_curl proxy -x HTTP_PROXY -u URLS -o OUT.jsonl [-c CONC] [-j PROCS] [-t LIMIT_S]
 *                    [-r RATE] [-b BLOCKED_WORD]
 *
 * raw:   the "as fast as this machine can go" reference. Task i goes once through proxy
 *        i mod P (round robin), no retries, no scoring, no rate limit: just libcurl multi
 *        with CONC transfers in flight per process and PROCS processes (tasks split i mod
 *        PROCS), each writing OUT.jsonl.<k>.
 * naive: the naive rotator users write: each attempt takes a uniformly random proxy; on
 *        failure (transport error, status other than 2xx, or a body containing
 *        BLOCKED_WORD) the task retries on another random proxy, up to ATTEMPTS attempts.
 * proxy: every task once through one HTTP proxy (scatter's front door: the daemon races,
 *        retries and paces, so the client does not); with -r RATE, open loop: task i is
 *        started at i / RATE seconds (per process) whatever is still in flight (CONC is
 *        then only a safety cap), so elapsed_ms is a latency under a steady arrival rate.
 *
 * Timeouts match scatterd's defaults: connect (incl. SOCKS handshake) 5 s, attempt 15 s.
 * After LIMIT_S seconds every unfinished task is written as not ok. One JSON line per
 * task: {"n":N,"ok":B,"status":S,"attempts":A,"elapsed_ms":E,"t_ms":T}, T the wall-clock
 * time (Unix ms) the task finished, null for an unfinished one: bench.sh draws tasks/s over
 * time from it, on the same clock as the other clients' and the run's start. Only the
 * addresses in the input files are contacted (the benchmark gives loopback addresses only).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_lines.h"

/* Unix time in ms: comparable across the processes of a run (now_ms is per boot). */
static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct task {
    char *url;
    int n;
    int attempts;
    double start_ms;
    char body[2048];
    size_t blen;
    int done;
};

static char **proxies;
static size_t nproxies;
static int naive;
static int via_proxy;
static double rate; /* tasks/s per process, open loop; 0 = closed loop */
static int max_attempts = 5;
static const char *blocked = NULL;
static uint64_t rng = 88172645463325252ull;

static uint64_t xrand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct task *t = ud;
    size_t n = sz * nm, room = sizeof t->body - 1 - t->blen;
    memcpy(t->body + t->blen, p, n < room ? n : room);
    t->blen += n < room ? n : room;
    t->body[t->blen] = 0;
    return n;
}

static CURL *make_easy(struct task *t, size_t pidx)
{
    CURL *e = curl_easy_init();
    t->blen = 0;
    t->body[0] = 0;
    t->attempts++;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PROXY, proxies[pidx % nproxies]);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    /* through the front door one request is a whole task (rounds of attempts up to the
     * daemon's deadline), so the client must not cut it at one attempt's timeout */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, via_proxy ? 120000L : 15000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    return e;
}

static int run(char **urls, size_t nurls, int proc, int nproc, int conc, double limit_ms,
               const char *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", out, proc);
    FILE *fo = fopen(path, "w");
    if (!fo) {
        perror(path);
        return 1;
    }
    rng ^= (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
    size_t mine = 0;
    for (size_t i = (size_t)proc; i < nurls; i += (size_t)nproc)
        mine++;
    struct task *tasks = calloc(mine ? mine : 1, sizeof *tasks);
    size_t k = 0;
    for (size_t i = (size_t)proc; i < nurls; i += (size_t)nproc, k++) {
        tasks[k].url = urls[i];
        tasks[k].n = (int)i + 1;
    }
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc * 2);
    double t0 = now_ms();
    size_t next = 0, finished = 0;
    int running = 0, inflight = 0;
    while (finished < mine) {
        while (inflight < conc && next < mine &&
               (rate <= 0 || now_ms() >= t0 + (double)next * 1e3 / rate)) {
            struct task *t = &tasks[next];
            /* open loop: latency counts from the scheduled start, as bench_open's does */
            t->start_ms = rate > 0 ? t0 + (double)next * 1e3 / rate : now_ms();
            size_t pidx = naive ? (size_t)(xrand() % nproxies) : (size_t)(t->n - 1);
            curl_multi_add_handle(m, make_easy(t, pidx));
            next++;
            inflight++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            struct task *t;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            int ok = msg->data.result == CURLE_OK && status >= 200 && status < 300 &&
                     t->blen > 0 && !(blocked && *blocked && strstr(t->body, blocked));
            curl_multi_remove_handle(m, e);
            curl_easy_cleanup(e);
            if (!ok && naive && t->attempts < max_attempts && now_ms() - t0 < limit_ms) {
                curl_multi_add_handle(m, make_easy(t, (size_t)(xrand() % nproxies)));
                continue;
            }
            t->done = 1;
            inflight--;
            finished++;
            fprintf(fo, "{\"n\":%d,\"ok\":%s,\"status\":%ld,\"attempts\":%d,\"elapsed_ms\":%.1f,\"t_ms\":%.1f}\n",
                    t->n, ok ? "true" : "false", status, t->attempts, now_ms() - t->start_ms, wall_ms());
        }
        if (now_ms() - t0 >= limit_ms)
            break;
        if (finished < mine) {
            int wait = 50;
            if (rate > 0 && next < mine) {
                double due = t0 + (double)next * 1e3 / rate - now_ms();
                wait = due <= 0 ? 0 : due < 50 ? (int)due + 1 : 50;
            }
            curl_multi_poll(m, NULL, 0, wait, NULL);
        }
    }
    for (size_t i = 0; i < mine; i++)
        if (!tasks[i].done)
            fprintf(fo, "{\"n\":%d,\"ok\":false,\"status\":0,\"attempts\":%d,\"elapsed_ms\":null,\"t_ms\":null}\n",
                    tasks[i].n, tasks[i].attempts);
    fclose(fo);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "raw") && strcmp(argv[1], "naive") && strcmp(argv[1], "proxy"))) {
        fprintf(stderr, "usage: bench_curl raw|naive -p PROXIES -u URLS -o OUT [-c CONC] "
                        "[-j PROCS] [-t LIMIT_S] [-a ATTEMPTS] [-b BLOCKED_WORD]\n"
                        "       bench_curl proxy -x HTTP_PROXY -u URLS -o OUT [-c CONC] [-j PROCS] "
                        "[-t LIMIT_S] [-r RATE] [-b BLOCKED_WORD]\n");
        return 2;
    }
    naive = strcmp(argv[1], "naive") == 0;
    via_proxy = strcmp(argv[1], "proxy") == 0;
    const char *pf = NULL, *uf = NULL, *out = NULL, *hp = NULL;
    int conc = 64, nproc = 1;
    double limit_s = 600;
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "p:u:o:c:j:t:a:b:x:r:")) != -1) {
        switch (c) {
        case 'p': pf = optarg; break;
        case 'u': uf = optarg; break;
        case 'o': out = optarg; break;
        case 'c': conc = atoi(optarg); break;
        case 'j': nproc = atoi(optarg); break;
        case 't': limit_s = atof(optarg); break;
        case 'a': max_attempts = atoi(optarg); break;
        case 'b': blocked = optarg; break;
        case 'x': hp = optarg; break;
        case 'r': rate = atof(optarg); break;
        default: return 2;
        }
    }
    if ((via_proxy ? !hp : !pf) || !uf || !out || conc < 1 || nproc < 1 || rate < 0 ||
        (rate > 0 && !via_proxy))
        return 2;
    size_t nurls;
    char **urls = read_lines(uf, &nurls);
    if (via_proxy) {
        proxies = malloc(sizeof *proxies);
        proxies[0] = strdup(hp);
        nproxies = 1;
    } else {
        proxies = read_lines(pf, &nproxies);
    }
    if (!nproxies)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pid_t *kids = calloc((size_t)nproc, sizeof *kids);
    for (int p = 0; p < nproc; p++) {
        kids[p] = fork();
        if (kids[p] == 0)
            _exit(run(urls, nurls, p, nproc, conc, limit_s * 1e3, out));
    }
    int rc = 0, st;
    for (int p = 0; p < nproc; p++)
        if (waitpid(kids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            rc = 1;
    return rc;
}

/*
 * scatterctl: command dispatch and the manual. Each command lives in its own file and parses
 * its own options; this file owns the global options, the help texts and reload/stop (which
 * signal the master through its pidfile instead of speaking the protocol, after checking that
 * the pidfile and the process are really scatterd's).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/paths.h"
#include "ctl/cli.h"

static const char HELP_MAIN[] =
    "Usage: scatterctl [-s SOCKET] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Control and use scatterd, the daemon that races HTTP requests over many SOCKS5 proxies.\n"
    "\n"
    "Global options:\n"
    "  -s, --socket SOCKET  the daemon's main Unix socket. Default: $SCATTER_SOCKET if set,\n"
    "                       else the daemon's default: /run/scatter/scatter.sock as root,\n"
    "                       $XDG_RUNTIME_DIR/scatter/scatter.sock otherwise. A socket served\n"
    "                       by another user (neither root nor you) is refused (exit 3).\n"
    "  -h, --help           this text; 'scatterctl COMMAND --help' describes a command.\n"
    "  -V, --version        print the version.\n"
    "\n"
    "Commands:\n"
    "  status    metrics snapshot: throughput, success rate, proxies, tasks, hosts, stalls\n"
    "  proxies   list proxies with their per-host health\n"
    "  hosts     list target hosts with their circuit state\n"
    "  top       live view: throughput, success, pool, in flight, hosts (q quits)\n"
    "  config    print the configuration the daemon runs with (as scatter.ini)\n"
    "  fetch     run URLs through the daemon, bodies to files or results as JSON lines\n"
    "  raw       send one request written as JSON, print the reply as JSON\n"
    "  reload    ask the master to reload its config and refresh sources (SIGHUP)\n"
    "  stop      ask the master to stop gracefully (SIGTERM)\n"
    "  help      'scatterctl help COMMAND' is 'scatterctl COMMAND --help'\n"
    "\n"
    "Exit status: 0 success; 1 the command ran but failed (a task failed, the daemon answered\n"
    "an error); 2 usage error; 3 cannot connect to the daemon.\n"
    "The wire protocol is described in docs/PROTOCOL.md.\n";

static const char HELP_CONFIG[] =
    "Usage: scatterctl config [--master]\n"
    "\n"
    "Prints the configuration in effect (the 'config' op) as a scatter.ini that loads back:\n"
    "every key with its value, then the [host:NAME] sections. By default the answering\n"
    "worker's; a worker takes the master's validated configuration at start and at every\n"
    "reload (SIGHUP), never from the file, so the two agree once the reload is done. Keys\n"
    "marked 'fixed at start' keep their start value until a restart whatever the file says.\n"
    "To ask one worker, give its own socket: -s <socket_path>.N.\n"
    "\n"
    "Options:\n"
    "  --master   print the master's configuration (its latest publication) instead.\n";

static const char HELP_STATUS[] =
    "Usage: scatterctl status [--json]\n"
    "\n"
    "Prints the daemon's metrics snapshot (the 'status' op): throughput over 1 s, 10 s and\n"
    "60 s; the success rate over the last minute; proxies healthy / cooling / dead / total;\n"
    "tasks pending, submitted, completed, failed and cancelled; attempts in flight; average\n"
    "latency; one line per target host with its circuit state (closed, open, half_open) and\n"
    "counters; and the stall counters that explain why tasks wait (delayed, requeued,\n"
    "dispatches, zero-availability events, candidates skipped for rate limit, cooldown or the\n"
    "in-flight cap, attempts fired / cancelled / failed).\n"
    "\n"
    "Options:\n"
    "  --json   print the status map as JSON instead (binary values as base64 strings).\n";

static const char HELP_PROXIES[] =
    "Usage: scatterctl proxies [--json] [--host HOST] [--limit N] [--offset N]\n"
    "\n"
    "Lists proxies (the 'proxies' op): URL (password redacted), state (unknown, active,\n"
    "dead), success and failure totals and success rate; under each proxy, one line per host\n"
    "it has been used for, with the windowed success rate, latency, consecutive failures,\n"
    "remaining cooldown and whether it is dead for that host.\n"
    "\n"
    "Options:\n"
    "  --json         print the reply as JSON.\n"
    "  --host HOST    only the per-host cells of HOST.\n"
    "  --limit N      at most N proxies (1..4294967295, default 1000). The daemon sends at most\n"
    "                 1,000 proxies and 20,000 (proxy, host) entries per page; the first line\n"
    "                 then gives the --offset of the next page.\n"
    "  --offset N     skip the first N proxies of the registry (default 0).\n";

static const char HELP_HOSTS[] =
    "Usage: scatterctl hosts [--json]\n"
    "\n"
    "Lists target hosts (the 'hosts' op): circuit state, healthy / cooling / dead proxies for\n"
    "the host, success, failure and target-error counts, and the rate-limit interval.\n"
    "\n"
    "Options:\n"
    "  --json   print the host list as JSON.\n";

static const char HELP_TOP[] =
    "Usage: scatterctl top [-d S] [-n N]\n"
    "\n"
    "A live view of the daemon, redrawn every second like top(1): throughput over 1 s, 10 s\n"
    "and 60 s; the success share over the last minute and the average latency; the pool\n"
    "(tasks pending / the daemon's pool capacity); attempts in flight; task totals; proxies\n"
    "healthy / cooling / dead / total; then one row per target host with its circuit state\n"
    "(closed, open in red, half_open in yellow), its healthy / cooling / dead proxies and its\n"
    "success, failure and target-error counts. Hosts that do not fit the window are counted\n"
    "in a last line. The numbers come from one 'status' request per refresh on one\n"
    "connection; they are daemon-wide, whichever worker answers.\n"
    "\n"
    "On a terminal it uses the alternate screen and restores the terminal when it ends. Keys:\n"
    "q quits. Ctrl-C, SIGTERM and SIGHUP quit the same way; a resized window is redrawn at\n"
    "once; Ctrl-Z gives the terminal back as it was before stopping, and 'fg' resumes the\n"
    "view. When standard output is not a terminal it prints plain frames without escape\n"
    "codes, one unless -n says more (like 'top -b -n 1'), for logs and scripts.\n"
    "\n"
    "If the daemon goes away (stopped, or no answer within 3 s) top restores the terminal,\n"
    "says so and exits 3.\n"
    "\n"
    "Options:\n"
    "  -d, --delay S        seconds between refreshes, 0.1 to 3600 (default 1).\n"
    "  -n, --iterations N   stop after N frames (default: until q on a terminal, 1 otherwise).\n"
    "\n"
    "Exit status: 0 quit by q, a signal, or after N frames; 1 the daemon refused the request;\n"
    "2 usage error; 3 cannot connect to the daemon, or lost it.\n";

static const char HELP_FETCH[] =
    "Usage: scatterctl fetch [URL ...] [-i FILE | --input-jsonl FILE] [-o DIR | --jsonl FILE]\n"
    "                        [-X METHOD] [-H 'Name: value']... [--header-file FILE]\n"
    "                        [-d STRING | --data-file FILE] [--session NAME] [--race K]\n"
    "                        [--timeout S] [--attempts N] [--window N] [--quiet]\n"
    "                        [--redis URL [--stream NAME]]\n"
    "\n"
    "Submits every URL to the daemon and waits for all results. URLs come from the arguments\n"
    "first, then from FILE, one per line; blank lines and lines starting with '#' are skipped.\n"
    "The input is read only as tasks finish, so a file of any length runs in bounded memory:\n"
    "at most --window tasks are outstanding. Connections go to every worker of the daemon.\n"
    "Tasks the daemon refuses with pool_full, and tasks lost when a worker restarts, are\n"
    "resubmitted automatically; each URL gets exactly one outcome.\n"
    "\n"
    "Each URL has a number n: its 1-based position among all URLs given (arguments first,\n"
    "then the lines of FILE, URLs or JSON lines alike; skipped lines are not counted, so for\n"
    "a file without blank or comment lines n is the line number).\n"
    "\n"
    "Input:\n"
    "  -i, --input FILE     read URLs from FILE ('-' = standard input).\n"
    "  --input-jsonl FILE   read one request per line from FILE ('-' = standard input): a JSON\n"
    "                       object, see 'JSON lines' below. URL arguments, if any, come first\n"
    "                       and use the command line's settings. -i and --input-jsonl are\n"
    "                       mutually exclusive.\n"
    "\n"
    "Output:\n"
    "  -o, --output DIR     write each successful response body to DIR/<n>.body (DIR is\n"
    "                       created if missing). Failed tasks write nothing.\n"
    "  --jsonl FILE         write one JSON object per task, in completion order, to FILE\n"
    "                       ('-' = standard output), with the keys n, url, ok, status, proxy,\n"
    "                       attempts, race, latency_ms, elapsed_ms, error, message, bytes\n"
    "                       (keys that do not apply to the outcome are null; url is null\n"
    "                       for an input line that did not make a request).\n"
    "                       -o and --jsonl are mutually exclusive.\n"
    "  -q, --quiet          no progress, no summary, no bad-line messages.\n"
    "\n"
    "Request (every task's default; a JSON line's fields override them for its task):\n"
    "  -X, --method METHOD  HTTP method, 1 to 16 upper-case letters (default GET, or POST\n"
    "                       when there is a body). A GET with a body is sent as such (the\n"
    "                       protocol allows a body with any method); HEAD with a body is a\n"
    "                       usage error.\n"
    "  -H, --header 'Name: value'\n"
    "                       add a request header; repeatable.\n"
    "  --header-file FILE   add the headers of FILE, one 'Name: value' per line; blank lines\n"
    "                       and lines starting with '#' are skipped. An error names FILE:LINE.\n"
    "                       With -H, at most 128 headers in all.\n"
    "  -d, --data STRING    send STRING as the request body.\n"
    "  --data-file FILE     send the bytes of FILE ('-' = standard input) as the request body,\n"
    "                       unchanged (binary is fine). At most the daemon's max_request_body.\n"
    "                       --data and --data-file are mutually exclusive.\n"
    "  --session NAME       sticky session (1 to 63 bytes): every task of this name uses the\n"
    "                       proxy pinned for its host until that proxy fails for it.\n"
    "  --race K             race each attempt over K proxies (1..64; default: the daemon's).\n"
    "  --timeout S          give up on a task after S seconds (fractions allowed; 0 = no\n"
    "                       deadline; default: the host's setting).\n"
    "  --attempts N         at most N rounds per task (0 = unlimited; default: the host's).\n"
    "  --window N           tasks outstanding at once (default: three quarters of the\n"
    "                       daemon's pool capacity, at most 4096; with --redis, 1000).\n"
    "\n"
    "Through Redis (several instances on one stream, docs/SCALING.md):\n"
    "  --redis URL          submit through the Redis stream at URL\n"
    "                       (redis://[:password@]host[:port][/db]) instead of the socket:\n"
    "                       each task is added to the stream with reply_to = a stream of this\n"
    "                       run's own (scatter:reply:<host>:<pid>:<random>), read with XREAD\n"
    "                       and removed at the end. Output, progress and exit status are the\n"
    "                       socket mode's. A task answered twice (an instance died after\n"
    "                       running it and another took it over) keeps its first result; the\n"
    "                       summary counts the others. A lost connection to Redis is retried\n"
    "                       for 60 s. The daemon's limits are not asked: a body over its\n"
    "                       max_request_body is answered too_large.\n"
    "  --stream NAME        the task stream (default scatter:tasks; the daemons' redis_stream).\n"
    "\n"
    "JSON lines (--input-jsonl): one object per line, for example\n"
    "    {\"url\": \"https://api.example.com/items\", \"method\": \"POST\",\n"
    "     \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"{\\\"q\\\": 1}\"}\n"
    "(on one line). Keys: url (string, required); method (string); headers (an object of\n"
    "strings, or an array of \"Name: value\" strings); body (string, sent as its UTF-8 bytes)\n"
    "or body_base64 (string, for binary bodies); session (string); timeout (seconds, a\n"
    "number); race (1..64); attempts (integer). null is the same as absent; other keys are\n"
    "errors. A line's headers are added to the command line's, replacing those of the same\n"
    "name (case-insensitive); its other fields replace the command line's. Blank lines and\n"
    "lines starting with '#' are skipped, as with -i.\n"
    "A bad line (not JSON, an unknown key, a wrong type) does not stop the run: it becomes a\n"
    "failed task with error 'bad_input' and a message naming the line and the field, counted\n"
    "in the summary and the exit status; standard error names the first 20. The other lines\n"
    "run, so one broken record does not cost a long batch; check the exit status.\n"
    "\n"
    "Progress goes to standard error: a redrawn bar on a terminal (done/total once the whole\n"
    "input has been read, rate, success share, failures), otherwise one line every 2 seconds.\n"
    "At the end a summary gives the totals, failures by error code, the elapsed time and the\n"
    "rate.\n"
    "\n"
    "Exit status: 0 every task succeeded; 1 at least one failed (a bad input line counts),\n"
    "or output could not be written, or --data-file could not be read; 2 usage error; 3\n"
    "cannot connect to the daemon (or to Redis, with --redis).\n";

static const char HELP_RAW[] =
    "Usage: scatterctl raw [--json] [--timeout S] JSON_MAP\n"
    "\n"
    "Sends one request written as a JSON object, converted to msgpack (strings stay strings,\n"
    "integers integers), on the main socket, waits for the reply with the same id and prints\n"
    "it as JSON (binary values as base64 strings). Example:\n"
    "    scatterctl raw '{\"op\":\"status\",\"id\":1}'\n"
    "Use ids below 4294967296. A request without a valid id is answered with id 0.\n"
    "\n"
    "Options:\n"
    "  --json        print the reply on one line (default: indented).\n"
    "  --timeout S   wait at most S seconds for the reply (default 60).\n";

static const char HELP_SIGNAL[] =
    "Usage: scatterctl reload|stop [--pidfile FILE]\n"
    "\n"
    "These do not use the socket: they read the master's pid from its pidfile and send it a\n"
    "signal. 'reload' sends SIGHUP (reload the configuration, refresh proxy sources);\n"
    "'stop' sends SIGTERM (stop accepting, let in-flight tasks finish within the grace\n"
    "period, save state, exit). The command returns once the signal is sent.\n"
    "\n"
    "Nothing is signalled unless the pidfile is a regular file (not a symlink) owned by root\n"
    "or you and writable by nobody else, and the pid is a process named scatterd running as\n"
    "root or you, or, for a daemon that switched users (`user =`), a root-owned pidfile in\n"
    "a directory owned by the user the process runs as; otherwise the command says which\n"
    "check failed and exits 1.\n"
    "\n"
    "Options:\n"
    "  --pidfile FILE   the master's pidfile (the pid_file key of scatter.ini). Default: the\n"
    "                   daemon's default, /run/scatter/scatterd.pid as root,\n"
    "                   $XDG_RUNTIME_DIR/scatter/scatterd.pid otherwise.\n";

static const char *help_for(const char *cmd)
{
    static const struct {
        const char *cmd, *text;
    } H[] = {{"status", HELP_STATUS}, {"proxies", HELP_PROXIES}, {"hosts", HELP_HOSTS}, {"config", HELP_CONFIG}, {"fetch", HELP_FETCH}, {"top", HELP_TOP},
             {"raw", HELP_RAW},       {"reload", HELP_SIGNAL},   {"stop", HELP_SIGNAL}};
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++)
        if (strcmp(cmd, H[i].cmd) == 0)
            return H[i].text;
    return NULL;
}

/* The owner of the directory holding `path`; (unsigned)-1 if it cannot be read. */
static unsigned dir_owner(const char *path)
{
    char dir[PATH_MAX];
    paths_dir_of(path, dir, sizeof dir);
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? (unsigned)st.st_uid : (unsigned)-1;
}

/* The uid line of /proc/PID/status: real and effective uid. 0 or -errno. */
static int proc_uids(long pid, unsigned *ruid, unsigned *euid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%ld/status", pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    int rc = -ENOENT;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %u %u", ruid, euid) == 2) {
            rc = 0;
            break;
        }
    fclose(f);
    return rc;
}

/* The program name of pid: the basename of /proc/PID/exe, or /proc/PID/comm when the link is
 * not readable (another user's process). 0 or -errno. */
static int proc_name(long pid, char *out, size_t cap)
{
    char p[64], exe[PATH_MAX];
    snprintf(p, sizeof p, "/proc/%ld/exe", pid);
    ssize_t n = readlink(p, exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *del = strstr(exe, " (deleted)"); /* the binary was replaced by an upgrade */
        if (del && del[10] == '\0')
            *del = '\0';
        const char *base = strrchr(exe, '/');
        snprintf(out, cap, "%s", base ? base + 1 : exe);
        return 0;
    }
    snprintf(p, sizeof p, "/proc/%ld/comm", pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    if (!fgets(out, (int)cap, f)) {
        fclose(f);
        return -EIO;
    }
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

/* A pidfile anyone else could have written, or a pid that is not scatterd, would let
 * another user aim our SIGTERM at any process of ours: every check must pass before the
 * signal. The pid is pinned with a pidfd first where the kernel has one, so it cannot be
 * recycled between the checks and the signal. */
static int cmd_signal(const char *cmd, int argc, char **argv)
{
    static const struct option L[] = {{"pidfile", required_argument, 0, 'p'}, {0, 0, 0, 0}};
    char defpath[PATH_MAX], err[512];
    const char *pidfile = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+:p:", L, NULL)) != -1) {
        if (ch == 'p')
            pidfile = optarg;
        else
            return cli_bad_option(cmd, ch, argv);
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!pidfile) {
        if (paths_default(PATHS_PID_NAME, defpath, sizeof defpath, err, sizeof err)) {
            fprintf(stderr, "scatterctl %s: no default pidfile: %s (or give --pidfile)\n", cmd, err);
            return EXIT_FAILED;
        }
        pidfile = defpath;
    }
    unsigned me = (unsigned)geteuid();
    int fd = open(pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            fprintf(stderr, "scatterctl %s: pidfile %s is a symlink; not trusting it\n", cmd, pidfile);
        else
            fprintf(stderr, "scatterctl %s: cannot read pidfile %s: %s (is scatterd running?)\n", cmd, pidfile,
                    strerror(errno));
        return EXIT_FAILED;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "scatterctl %s: pidfile %s is not a regular file; not trusting it\n", cmd, pidfile);
        close(fd);
        return EXIT_FAILED;
    }
    if (st.st_uid != 0 && st.st_uid != me) {
        fprintf(stderr, "scatterctl %s: pidfile %s is owned by uid %u, neither root nor you (uid %u); not trusting it\n",
                cmd, pidfile, (unsigned)st.st_uid, me);
        close(fd);
        return EXIT_FAILED;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        fprintf(stderr, "scatterctl %s: pidfile %s is writable by group or others (mode %04o); not trusting it\n",
                cmd, pidfile, (unsigned)(st.st_mode & 07777));
        close(fd);
        return EXIT_FAILED;
    }
    char buf[32] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    char *end;
    long pid = n > 0 ? strtol(buf, &end, 10) : 0;
    if (n <= 0 || pid <= 1 || pid > INT_MAX || (*end != '\n' && *end != '\0')) {
        fprintf(stderr, "scatterctl %s: pidfile %s holds no valid pid\n", cmd, pidfile);
        return EXIT_FAILED;
    }
    int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (pfd < 0 && errno == ESRCH) {
        fprintf(stderr, "scatterctl %s: no process %ld (pidfile %s is stale; is scatterd running?)\n", cmd, pid,
                pidfile);
        return EXIT_FAILED;
    }
    char name[PATH_MAX];
    unsigned ruid, euid;
    int rc = proc_name(pid, name, sizeof name);
    if (rc == 0)
        rc = proc_uids(pid, &ruid, &euid);
    if (rc) {
        fprintf(stderr, "scatterctl %s: cannot inspect pid %ld (from %s): %s\n", cmd, pid, pidfile, strerror(-rc));
    } else if (strcmp(name, "scatterd") != 0) {
        fprintf(stderr, "scatterctl %s: pid %ld (from %s) is '%s', not scatterd; not signalling it\n", cmd, pid,
                pidfile, name);
        rc = -EPERM;
    } else if (((ruid != 0 && ruid != me) || (euid != 0 && euid != me)) &&
               !(st.st_uid == 0 && ruid == euid && ruid == dir_owner(pidfile))) {
        /* the exception: a daemon that switched to `user =` wrote its pid file as root into
         * the runtime directory it gave that user, and runs as the directory's owner */
        fprintf(stderr, "scatterctl %s: pid %ld (from %s) runs as uid %u, neither root nor you (uid %u); "
                "not signalling it\n", cmd, pid, pidfile, ruid != 0 && ruid != me ? ruid : euid, me);
        rc = -EPERM;
    }
    if (rc) {
        if (pfd >= 0)
            close(pfd);
        return EXIT_FAILED;
    }
    int sig = strcmp(cmd, "reload") == 0 ? SIGHUP : SIGTERM;
    rc = pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) : kill((pid_t)pid, sig);
    int e = errno;
    if (pfd >= 0)
        close(pfd);
    if (rc) {
        fprintf(stderr, "scatterctl %s: cannot signal pid %ld: %s\n", cmd, pid, strerror(e));
        return EXIT_FAILED;
    }
    printf("sent %s to scatterd (pid %ld)\n", sig == SIGHUP ? "SIGHUP" : "SIGTERM", pid);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int i = 1;
    opterr = 0; /* commands print their own usage errors, naming the argument */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(HELP_MAIN, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("scatterctl %s (protocol 1)\n", SCATTER_VERSION);
            return EXIT_OK;
        } else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(NULL, "option '%s' needs a value", a);
            sock = argv[++i];
        } else if (strncmp(a, "--socket=", 9) == 0) {
            sock = a + 9;
        } else {
            return cli_usage_error(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc)
        return cli_usage_error(NULL, "missing COMMAND");
    const char *cmd = argv[i];
    int sargc = argc - i;
    char **sargv = argv + i;
    if (strcmp(cmd, "help") == 0) {
        const char *h = sargc > 1 ? help_for(sargv[1]) : HELP_MAIN;
        if (!h)
            return cli_usage_error(NULL, "no help for unknown command '%s'", sargv[1]);
        fputs(h, stdout);
        return EXIT_OK;
    }
    const char *h = help_for(cmd);
    if (!h)
        return cli_usage_error(NULL, "unknown command '%s'", cmd);
    /* --help anywhere among a command's options, but not as a value (raw's JSON, fetch's URLs) */
    for (int j = 1; j < sargc; j++) {
        if (strcmp(sargv[j], "--") == 0)
            break;
        if (strcmp(sargv[j], "--help") == 0 || strcmp(sargv[j], "-h") == 0) {
            fputs(h, stdout);
            return EXIT_OK;
        }
    }
    if (strcmp(cmd, "status") == 0)
        return cmd_status(sock, sargc, sargv);
    if (strcmp(cmd, "proxies") == 0)
        return cmd_proxies(sock, sargc, sargv);
    if (strcmp(cmd, "hosts") == 0)
        return cmd_hosts(sock, sargc, sargv);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(sock, sargc, sargv);
    if (strcmp(cmd, "fetch") == 0)
        return cmd_fetch(sock, sargc, sargv);
    if (strcmp(cmd, "raw") == 0)
        return cmd_raw(sock, sargc, sargv);
    if (strcmp(cmd, "top") == 0)
        return cmd_top(sock, sargc, sargv);
    return cmd_signal(cmd, sargc, sargv);
}

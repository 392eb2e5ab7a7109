/* Argument helpers shared by scatterctl's commands: every usage error names what was wrong. */
#include "ctl/cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "scatterctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'scatterctl %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int ch, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (ch == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_uint(const char *cmd, const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)*arg) ? strtoull(arg, &end, 10) : 0;
    if (!isdigit((unsigned char)*arg) || errno || *end || v < min || v > max) {
        cli_usage_error(cmd, "bad %s '%s': expected an integer from %llu to %llu", opt, arg, (unsigned long long)min,
                        (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_seconds_ms(const char *cmd, const char *opt, const char *arg, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = isdigit((unsigned char)*arg) || *arg == '.' ? strtod(arg, &end) : -1;
    if (v < 0 || errno || *end || v > 86400.0 * 365) {
        cli_usage_error(cmd, "bad %s '%s': expected seconds, e.g. 30 or 2.5", opt, arg);
        return -1;
    }
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

int cli_connect(const char *sock, const char *cmd, int single, unsigned window, sc_client **c)
{
    sc_options o = {.socket_path = sock, .single_connection = single, .window = window};
    char err[256] = "";
    int rc = sc_client_open(&o, c, err, sizeof err);
    if (rc) {
        fprintf(stderr, "scatterctl %s: cannot connect to scatterd: %s\n", cmd, *err ? err : strerror(-rc));
        return EXIT_CONNECT;
    }
    return 0;
}

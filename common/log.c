/* Line logger. One write(2) per line so lines from several processes sharing the fd never
 * interleave mid-line (O_APPEND on files). */
#include "common/log.h"
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const NAMES[] = {"error", "warn", "info", "debug"};

void log_init(logger *lg, log_level level, int fd, const char *who)
{
    lg->level = level;
    lg->fd = fd;
    snprintf(lg->who, sizeof lg->who, "%s", who);
}

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (strcasecmp(s, NAMES[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(log_level l)
{
    return (unsigned)l <= LOG_DEBUG ? NAMES[l] : "?";
}

void log_msg(const logger *lg, log_level l, const char *fmt, ...)
{
    if (l > lg->level)
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000L,
                  NAMES[l], lg->who);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2; /* truncated: keep the newline */
    line[n++] = '\n';
    ssize_t w = write(lg->fd, line, (size_t)n);
    (void)w; /* nowhere better to report a failing log */
}

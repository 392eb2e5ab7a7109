/* Line logger. One write(2) per line so lines from several processes sharing the fd never
 * interleave mid-line (O_APPEND on files). */
#include "common/log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const NAMES[] = {"error", "warn", "info", "debug"};
static const char *const FORMATS[] = {"text", "json"};

#define LOG_MSG_MAX 2048
/* the longest escaped message (\u00XX for each byte) plus the fixed fields */
#define LOG_LINE_MAX (LOG_MSG_MAX * 6 + 256)

void log_set_process(logger *lg, const char *proc, unsigned index)
{
    snprintf(lg->proc, sizeof lg->proc, "%s", proc);
    lg->index = index;
    if (index)
        snprintf(lg->who, sizeof lg->who, "%s %u", proc, index);
    else
        snprintf(lg->who, sizeof lg->who, "%s", proc);
}

void log_init(logger *lg, log_level level, log_format format, int fd, const char *proc, unsigned index)
{
    lg->level = level;
    lg->format = format;
    lg->fd = fd;
    log_set_process(lg, proc, index);
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

int log_format_parse(const char *s, log_format *out)
{
    for (int i = 0; i <= LOG_JSON; i++)
        if (strcasecmp(s, FORMATS[i]) == 0) {
            *out = (log_format)i;
            return 0;
        }
    return -1;
}

const char *log_format_name(log_format f)
{
    return (unsigned)f <= LOG_JSON ? FORMATS[f] : "?";
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

int log_reopen(logger *lg, const char *path)
{
    int fd = log_open_file(path);
    if (fd < 0)
        return fd;
    /* dup3 swaps the file under the same number atomically: a line being written by this
     * process goes whole to the old file or the new one */
    int rc = fd == lg->fd ? 0 : dup3(fd, lg->fd, O_CLOEXEC) < 0 ? -errno : 0;
    if (fd != lg->fd)
        close(fd);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the byte at s does not start one
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

size_t log_json_escape(const char *str, size_t n, char *out, size_t cap)
{
    static const char HEX[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t tl, step = 1;
        unsigned char c = s[i];
        size_t ul = utf8_len(s + i, n - i);
        if (c == '"' || c == '\\') {
            tmp[0] = '\\', tmp[1] = (char)c, tl = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            tmp[0] = '\\', tmp[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', tl = 2;
        } else if (c < 0x20 || ul == 0) {
            /* control bytes, and bytes that are not UTF-8 (read as Latin-1): the line stays
             * valid JSON whatever a proxy or a target put in a message */
            memcpy(tmp, "\\u00", 4);
            tmp[4] = HEX[c >> 4], tmp[5] = HEX[c & 15], tl = 6;
        } else {
            memcpy(tmp, s + i, ul);
            tl = step = ul;
        }
        if (o + tl >= cap)
            break;
        memcpy(out + o, tmp, tl);
        o += tl;
        i += step;
    }
    out[o] = '\0';
    return o;
}

void log_msg(const logger *lg, log_level l, const char *fmt, ...)
{
    if (l > lg->level)
        return;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if (m >= (int)sizeof msg)
        m = (int)sizeof msg - 1; /* truncated */
    char ts_s[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t tn = strftime(ts_s, sizeof ts_s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts_s + tn, sizeof ts_s - tn, ".%03ldZ", ts.tv_nsec / 1000000L);
    char line[LOG_LINE_MAX];
    int n;
    if (lg->format == LOG_JSON) {
        char proc[sizeof lg->proc * 6], index[16];
        log_json_escape(lg->proc, strlen(lg->proc), proc, sizeof proc);
        if (lg->index)
            snprintf(index, sizeof index, "%u", lg->index);
        else
            snprintf(index, sizeof index, "null");
        n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"process\":\"%s\",\"worker\":%s,"
                     "\"pid\":%d,\"message\":\"", ts_s, NAMES[l], proc, index, (int)getpid());
        n += (int)log_json_escape(msg, (size_t)m, line + n, sizeof line - (size_t)n - 3);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        n = snprintf(line, sizeof line, "%s %-5s %s: %.*s", ts_s, NAMES[l], lg->who, m, msg);
        if (n > (int)sizeof line - 2)
            n = (int)sizeof line - 2;
    }
    line[n++] = '\n';
    ssize_t w = write(lg->fd, line, (size_t)n);
    (void)w; /* nowhere better to report a failing log */
}

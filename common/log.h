/*
 * Logging: one line per event, in one of two formats (`log_format`):
 *   text  "2026-11-23T09:00:00.123Z info  worker 2: message"
 *   json  {"time":"2026-11-23T09:00:00.123Z","level":"info","process":"worker","worker":2,
 *          "pid":1234,"message":"..."}   (one object per line; "worker" is null outside workers)
 * The logger is part of each process's context (no global state); pass it explicitly.
 */
#ifndef SCATTER_COMMON_LOG_H
#define SCATTER_COMMON_LOG_H

#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;
typedef enum { LOG_TEXT = 0, LOG_JSON } log_format;

typedef struct {
    log_level level;
    log_format format;
    int fd;          /* stderr or an opened log file */
    unsigned index;  /* the worker's index (1..); 0 in the master and other processes */
    char proc[16];   /* "master", "worker", "fetch" */
    char who[32];    /* text format: "master", "worker 2", "fetch" */
} logger;

/* `proc` names the process kind, `index` the worker (0 = not a worker). */
void log_init(logger *lg, log_level level, log_format format, int fd, const char *proc, unsigned index);
/* A copy of a logger for a forked child of another kind (a worker, a source fetch). */
void log_set_process(logger *lg, const char *proc, unsigned index);
/* "error" | "warn" | "info" | "debug" -> 0 and *out; -1 if unknown. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level l);
/* "text" | "json" -> 0 and *out; -1 if unknown. */
int log_format_parse(const char *s, log_format *out);
const char *log_format_name(log_format f);
/* Opens a log file the way every process does: append, create 0640, never through a symlink,
 * close-on-exec. An fd or -errno. */
int log_open_file(const char *path);
/* Reopens `path` onto the logger's fd (same descriptor number, so copies of the logger stay
 * valid): after logrotate renamed the file, new lines go to a new file at the same path.
 * 0, or -errno with the old file still in use. */
int log_reopen(logger *lg, const char *path);
/* Writes `s` as a JSON string body (no quotes) into out: '"', '\\' and control bytes escaped,
 * a byte that is not part of valid UTF-8 written as \u00XX. Returns the length written
 * (always < cap; the text is cut at a character boundary if it does not fit). */
size_t log_json_escape(const char *s, size_t n, char *out, size_t cap);
void log_msg(const logger *lg, log_level l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOGE(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define LOGW(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define LOGI(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define LOGD(lg, ...) do { if ((lg)->level >= LOG_DEBUG) log_msg((lg), LOG_DEBUG, __VA_ARGS__); } while (0)

#endif

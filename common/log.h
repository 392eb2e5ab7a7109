/*
 * Logging: one line per event, "2026-11-23T09:00:00.123Z LEVEL who: message".
 * The logger is part of each process's context (no global state); pass it explicitly.
 */
#ifndef SCATTER_COMMON_LOG_H
#define SCATTER_COMMON_LOG_H

#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

typedef struct {
    log_level level;
    int fd;          /* stderr or an opened log file */
    char who[32];    /* "master", "worker 2" */
} logger;

void log_init(logger *lg, log_level level, int fd, const char *who);
/* "error" | "warn" | "info" | "debug" -> 0 and *out; -1 if unknown. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level l);
void log_msg(const logger *lg, log_level l, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOGE(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define LOGW(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define LOGI(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define LOGD(lg, ...) do { if ((lg)->level >= LOG_DEBUG) log_msg((lg), LOG_DEBUG, __VA_ARGS__); } while (0)

#endif

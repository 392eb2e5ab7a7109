/*
 * scatterctl's internals shared by its command files: exit codes, argument parsing helpers,
 * and the command entry points (each parses its own options).
 */
#ifndef SCATTER_CTL_CLI_H
#define SCATTER_CTL_CLI_H

#include <stdint.h>

#include "ctl/scatter_client.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

#define CLI_CALL_TIMEOUT_MS 10000

/* Parses an unsigned decimal in [min, max]; on error prints "scatterctl CMD: bad OPT 'ARG'"
 * and returns -1. */
int cli_uint(const char *cmd, const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out);
/* Seconds with an optional fraction ("2.5") into milliseconds. */
int cli_seconds_ms(const char *cmd, const char *opt, const char *arg, uint64_t *ms);
/* Prints "scatterctl CMD: msg" and "Try 'scatterctl CMD --help'."; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt_long (opterr = 0, optstring starting "+:" or ":") returned '?' or ':':
 * names the offending argument and returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, int ch, char **argv);
/* Opens a single-connection client for control commands; prints the reason on failure. */
int cli_connect(const char *sock, const char *cmd, int single, unsigned window, sc_client **c);

int cmd_status(const char *sock, int argc, char **argv);
int cmd_proxies(const char *sock, int argc, char **argv);
int cmd_hosts(const char *sock, int argc, char **argv);
int cmd_config(const char *sock, int argc, char **argv);
int cmd_raw(const char *sock, int argc, char **argv);
int cmd_fetch(const char *sock, int argc, char **argv);
int cmd_top(const char *sock, int argc, char **argv);

#endif

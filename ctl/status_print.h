/* Human-readable printers for the status, hosts and proxies replies (ctl/status.c). */
#ifndef SCATTER_CTL_STATUS_PRINT_H
#define SCATTER_CTL_STATUS_PRINT_H

#include <msgpack.h>
#include <stdio.h>

void print_status(FILE *out, const msgpack_object *status);
void print_hosts(FILE *out, const msgpack_object *hosts);
void print_proxies(FILE *out, const msgpack_object *reply);

#endif

/*
 * Where scatter's files live by default, and how the daemon creates the files it writes.
 *
 * Defaults live in a directory only the daemon's user can write (the runtime directory):
 * /run/scatter when running as root, $XDG_RUNTIME_DIR/scatter otherwise. A shared directory
 * such as /tmp lets another local user pre-create, symlink or squat the socket and pid file.
 * scatterd and scatterctl both take their defaults from here, so they agree.
 *
 * Every file the daemon writes is created at a temp name with O_CREAT|O_EXCL|O_NOFOLLOW (after
 * unlinking whatever is there: unlink removes a symlink, it never follows it) and renamed over
 * the final name, so a planted symlink or a file owned by someone else is never written through.
 *
 * Functions return 0 (or an fd) / -errno and put a message in err naming the path; they do not log.
 */
#ifndef SCATTER_COMMON_PATHS_H
#define SCATTER_COMMON_PATHS_H

#include <stddef.h>
#include <sys/types.h>

#define PATHS_ROOT_DIR "/run/scatter"
#define PATHS_SUBDIR "scatter"          /* under $XDG_RUNTIME_DIR for other users */
#define PATHS_SOCKET_NAME "scatter.sock"
#define PATHS_PID_NAME "scatterd.pid"

/* The runtime directory for a process running as `uid` with XDG_RUNTIME_DIR = `xdg` (NULL or
 * "" when unset). -ENOENT with a message when uid is not 0 and xdg is unset or not absolute. */
/* The directory part of `path` into out: "." when it has no slash, "/" for a file at the
 * root (a path cut to cap - 1 bytes first). */
void paths_dir_of(const char *path, char *out, size_t cap);
int paths_runtime_dir(uid_t uid, const char *xdg, char *out, size_t cap, char *err, size_t errcap);

/* `name` inside the runtime directory of this process (geteuid, getenv). */
int paths_default(const char *name, char *out, size_t cap, char *err, size_t errcap);

/* Creates `dir` with mode 0750 if missing (its parent must exist), then checks it: a real
 * directory (not a symlink), owned by `uid`, not writable by group or others. -ENOTDIR,
 * -EPERM or -errno otherwise, with a message saying which check failed. */
int paths_ensure_dir(const char *dir, uid_t uid, char *err, size_t errcap);

/* Opens `tmp` for writing as a new file of `mode`: whatever is at `tmp` (a stale temp, a
 * symlink) is unlinked first, then O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC. An fd, or -errno (for
 * example -EEXIST when the name could not be freed: a file of another user in a sticky dir). */
int paths_create_tmp(const char *tmp, mode_t mode, char *err, size_t errcap);

/* Writes `n` bytes to `path` through "<path>.tmp" (paths_create_tmp, write, fsync, rename):
 * a reader sees the old file or the new one, never a partial one. 0 or -errno. */
int paths_write_atomic(const char *path, const void *data, size_t n, mode_t mode, char *err, size_t errcap);

#endif

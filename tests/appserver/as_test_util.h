/*
 * Helpers shared by the app-server tests: temporary directories, the
 * reference fixture, quiet logs.
 */
#ifndef AS_TEST_UTIL_H
#define AS_TEST_UTIL_H

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ls_log.h"

/* A new temporary directory (static buffer per call site is enough). */
static inline const char *
ast_tmpdir(void)
{
	static char dir[256];

	if (dir[0] == '\0') {
		const char *base = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/lsas-XXXXXX",
		         base && *base ? base : "/tmp");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return dir;
}

/* Remove the temporary directory and its files (not recursive). */
static inline void
ast_tmpdir_remove(void)
{
	const char *dir = ast_tmpdir();
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d) {
		closedir(d);
	}
	rmdir(dir);
}

/* The reference fixture of docs/accounts.md (new reference). */
static inline json_t *
ast_fixture(void)
{
	json_error_t jerr;
	json_t *f = json_load_file(LS_FIXTURE, 0, &jerr);

	if (f == NULL) {
		fprintf(stderr, "cannot load %s: %s\n", LS_FIXTURE, jerr.text);
		exit(1);
	}
	return f;
}

static inline void
ast_quiet_sink(ls_log_level level, const char *component, const char *message,
               void *user)
{
	(void)level;
	(void)component;
	(void)message;
	(void)user;
}

/* Silence logs unless LS_TEST_LOG is set. */
static inline void
ast_quiet(void)
{
	if (getenv("LS_TEST_LOG") == NULL) {
		ls_log_set_sink(ast_quiet_sink, NULL);
	}
}

#endif

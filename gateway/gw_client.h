/*
 * The browser client's files (/lightstream.js, .min.js, .mjs, .d.ts),
 * served from memory whatever static directory is configured (docs/
 * protocol.md, "HTTP"): with CORS, cache validators (ETag, Last-Modified,
 * 304 on If-None-Match / If-Modified-Since) and a gzip copy for clients
 * that accept it.
 */
#ifndef GW_CLIENT_H
#define GW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct gw_client_file {
	const char *path;  /* "/lightstream.js" */
	const char *ctype; /* its Content-Type */
	char *body;        /* the file */
	size_t len;
	char *gz; /* gzip of body, NULL when it would not be smaller */
	size_t gzlen;
	time_t mtime;
	char etag[24];          /* "\"<16 hex digits>\"" */
	char last_modified[32]; /* IMF-fixdate */
} gw_client_file;

typedef struct gw_client_files gw_client_files;

/*
 * Load the client files found in dir (borrowed; NULL: none); a file that is
 * not there is the copy compiled into the binary (gw_embed.h). Returns a new
 * set (gw_client_files_free), or NULL when out of memory.
 */
gw_client_files *gw_client_files_load(const char *dir);

/* Free the set; accepts NULL and clears *cf. */
void gw_client_files_free(gw_client_files **cf);

/* The file for a request path, or NULL when it is not a client file. */
const gw_client_file *gw_client_files_find(const gw_client_files *cf,
                                           const char *path);

/*
 * Is the client's copy current? if_none_match / if_modified_since are the
 * request's header values ("" when absent).
 */
bool gw_client_file_fresh(const gw_client_file *f, const char *if_none_match,
                          const char *if_modified_since);

#endif

/*
 * The browser client and the demo page, embedded at build time from
 * clients/js/public (gateway/gw_embed.py), so that the gateway serves them
 * whatever the build layout or install prefix (docs/configuration.md,
 * "Static files").
 */
#ifndef GW_EMBED_H
#define GW_EMBED_H

#include <stddef.h>

typedef struct gw_embedded_file {
	const char *name; /* "lightstream.js", "index.html", ... */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, for ETag / If-None-Match */
	long long mtime; /* of the source file at build time (Last-Modified) */
} gw_embedded_file;

/* Terminated by an entry whose name is NULL. */
extern const gw_embedded_file gw_embedded_files[];

#endif

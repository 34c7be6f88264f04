/*
 * `lightstream token`: request a token from a gateway's HTTP endpoint
 * (docs/protocol.md (HTTP), /lightstream/services/auth/generatetoken) and
 * print it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_proto.h"
#include "ls_settings.h"
#include "lsc.h"
#include "lsc_cli.h"

#define TOKEN_DEFAULT_URL "http://127.0.0.1:8080"

enum {
	TOKEN_OPT_PRIVATE_KEY = 0x100,
	TOKEN_OPT_TTL,
	TOKEN_OPT_IP,
	TOKEN_OPT_WEB,
	TOKEN_OPT_CA_FILE,
};

static void
token_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream token [OPTIONS]\n"
	        "\n"
	        "Request a token for some roles of an account and print its "
	        "value.\n"
	        "\n"
	        "Options:\n"
	        "  -u, --url URL           gateway, http://HOST:PORT or "
	        "https://... (default\n"
	        "                          " TOKEN_DEFAULT_URL ")\n"
	        "  -a, --app APPKEY        the account's app key (public "
	        "key) (required)\n"
	        "      --private-key K     the account's private key, or "
	        "@FILE (required)\n"
	        "  -r, --roles R1,R2       roles the token grants "
	        "(required)\n"
	        "      --ttl S             lifetime in seconds, 1-86400 "
	        "(server default 3600)\n"
	        "      --ip ADDRESS        bind the token to one client IP "
	        "address\n"
	        "      --web               a web token (signed challenge "
	        "at connect)\n"
	        "  -o, --output FMT        value (default): the token; "
	        "json: the whole data\n"
	        "                          object {value, expiresAt, roles, "
	        "webToken, ipAddress}\n"
	        "  -T, --timeout S         give up after S seconds "
	        "(default 10)\n"
	        "      --ca-file FILE      CA certificates (PEM) for "
	        "https://\n"
	        "  -k, --insecure          accept any server certificate "
	        "(development)\n"
	        "      --log-level L       debug, info (default), warn, "
	        "error, off\n"
	        "  -h, --help              this help\n"
	        "\n"
	        "Exit status: 0 printed; 1 refused (wrong key, unknown "
	        "role), server\n"
	        "unreachable or failing; 2 bad arguments.\n");
}

int
cmd_token(int argc, char **argv)
{
	static const struct option own[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "app", required_argument, NULL, 'a' },
		{ "private-key", required_argument, NULL,
		  TOKEN_OPT_PRIVATE_KEY },
		{ "roles", required_argument, NULL, 'r' },
		{ "ttl", required_argument, NULL, TOKEN_OPT_TTL },
		{ "ip", required_argument, NULL, TOKEN_OPT_IP },
		{ "web", no_argument, NULL, TOKEN_OPT_WEB },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "ca-file", required_argument, NULL, TOKEN_OPT_CA_FILE },
		{ "insecure", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[48];
	lsc_token_request req;
	ls_settings settings;
	lsc_error err;
	char *text = NULL;
	json_t *data = NULL;
	char *key_owned = NULL;
	bool json_out = false;
	long timeout_ms = 10000;
	int opt, rc = CMD_EXIT_USAGE;

	memset(&req, 0, sizeof(req));
	req.url = TOKEN_DEFAULT_URL;
	if (cmd_settings_init("token", &settings) != 0) {
		return CMD_EXIT_FAILURE;
	}
	lsc_cli_options(own, opts, 48);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:a:r:o:T:kh", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'u':
			req.url = optarg;
			break;
		case 'a':
			req.app_key = optarg;
			break;
		case TOKEN_OPT_PRIVATE_KEY:
			if (lsc_cli_text_option(
			            "token", "the private key from", optarg,
			            &req.private_key, &key_owned) != 0) {
				goto out;
			}
			break;
		case 'r':
			req.roles = optarg;
			break;
		case TOKEN_OPT_TTL:
			if (lsc_cli_long(optarg, LS_TTL_MAX, &req.ttl_s) !=
			            0 ||
			    req.ttl_s < LS_TTL_MIN) {
				rc = lsc_cli_usage_error("token",
				                         "--ttl must be %d-%d "
				                         "seconds, not '%s'",
				                         LS_TTL_MIN,
				                         LS_TTL_MAX, optarg);
				goto out;
			}
			break;
		case TOKEN_OPT_IP:
			req.ip_address = optarg;
			break;
		case TOKEN_OPT_WEB:
			req.web_token = true;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0) {
				json_out = true;
			} else if (strcmp(optarg, "value") == 0 ||
			           strcmp(optarg, "plain") == 0) {
				json_out = false;
			} else {
				rc = lsc_cli_usage_error(
				        "token",
				        "--output must be value "
				        "or json, not '%s'",
				        optarg);
				goto out;
			}
			break;
		case 'T':
			if (lsc_cli_timeout_option("token", optarg, 3600000,
			                           &timeout_ms) != 0) {
				goto out;
			}
			break;
		case TOKEN_OPT_CA_FILE:
			req.ca_file = optarg;
			break;
		case 'k':
			req.insecure = true;
			break;
		case 'h':
			token_usage(stdout);
			rc = CMD_EXIT_OK;
			goto out;
		default:
			if (lsc_cli_settings_option("token", &settings, opt,
			                            optarg) != 1) {
				goto out;
			}
			break;
		}
	}
	if (cmd_apply_logging("token", &settings) != 0) {
		goto out;
	}
	if (optind != argc) {
		rc = lsc_cli_usage_error("token", "unexpected argument '%s'",
		                         argv[optind]);
		goto out;
	}
	if (req.app_key == NULL || req.private_key == NULL ||
	    req.roles == NULL || *req.roles == '\0') {
		rc = lsc_cli_usage_error("token", "%s",
		                         "--app, --private-key and --roles "
		                         "are required");
		goto out;
	}
	req.timeout_ms = (int)timeout_ms;
	rc = lsc_token_request_run(&req, &text, &err);
	if (rc != 0) {
		fprintf(stderr, "lightstream token: %s\n", err.text);
		rc = rc == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_FAILURE;
		goto out;
	}
	data = json_loads(text, 0, NULL);
	free(text);
	if (data == NULL) {
		fprintf(stderr, "lightstream token: out of memory\n");
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	if (json_out) {
		text = json_dumps(data, JSON_COMPACT);
		if (text == NULL) {
			rc = CMD_EXIT_FAILURE;
			goto out;
		}
		printf("%s\n", text);
		free(text);
	} else {
		const char *value =
		        json_string_value(json_object_get(data, "value"));

		if (value == NULL) {
			fprintf(stderr, "lightstream token: the response has "
			                "no token value\n");
			rc = CMD_EXIT_FAILURE;
			goto out;
		}
		printf("%s\n", value);
	}
	rc = fflush(stdout) == 0 ? CMD_EXIT_OK : CMD_EXIT_FAILURE;

out:
	json_decref(data);
	if (key_owned != NULL) {
		memset(key_owned, 0, strlen(key_owned));
	}
	free(key_owned);
	ls_settings_clear(&settings);
	return rc;
}

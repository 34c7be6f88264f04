/* App-server changes as control-channel announcements. */
#include "cmd_announce.h"

#include <stdio.h>
#include <string.h>

void
cmd_change_control(const as_change *ch, ps_control *out)
{
	memset(out, 0, sizeof(*out));
	switch (ch->kind) {
	case AS_CHANGE_REVOKED:
		out->kind = PS_CONTROL_REVOKED;
		break;
	case AS_CHANGE_DELETED:
		out->kind = PS_CONTROL_DELETED;
		break;
	case AS_CHANGE_CHANGED:
		out->kind = PS_CONTROL_CHANGED;
		break;
	case AS_CHANGE_RESET:
		out->kind = PS_CONTROL_RESET;
		break;
	}
	if (ch->app_key != NULL) {
		snprintf(out->app_key, sizeof(out->app_key), "%s",
		         ch->app_key);
	}
	if (ch->token_hash != NULL &&
	    strlen(ch->token_hash) >= PS_CONTROL_TOKEN_ID_LEN) {
		ps_control_token_id_of_hash(ch->token_hash, out->token_id);
	}
}

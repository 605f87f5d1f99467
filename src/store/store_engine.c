/* The registry of store engines: each engine defines one const store_engine_t and is listed
 * here once (curl's vtls.c keeps its backends the same way). */
#include "store/store_engine.h"

#include <stdio.h>
#include <string.h>

#include "store/store_pg.h"
#include "store/store_sqlite.h"

const store_engine_t *const store_engines[] = {
    &store_engine_sqlite,   /* the default: embedded, one file */
    &store_engine_postgres, /* a database server that several nodes may share */
    NULL,
};

const store_engine_t *store_engine_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; store_engines[i]; i++)
        if (strcmp(store_engines[i]->name, name) == 0) return store_engines[i];
    return NULL;
}

const char *store_target_engine(const char *target, const char **engine_target)
{
    *engine_target = target;
    if (strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0)
        return "postgres";
    if (strncmp(target, "sqlite:", 7) == 0) {
        *engine_target = target + 7;
        return "sqlite";
    }
    /* Anything else with a scheme is an engine this build does not know; a plain path (no
     * "scheme:" before the first '/') is a SQLite file. */
    const char *colon = strchr(target, ':'), *slash = strchr(target, '/');
    if (colon && (!slash || colon < slash) && colon > target) return NULL;
    return "sqlite";
}

void store_target_redact(const char *target, char *out, size_t cap)
{
    /* scheme://user:password@host...: the password is between the first ':' after "//" and
     * the last '@' before the path. */
    const char *auth = strstr(target, "://");
    const char *at = NULL, *colon = NULL;
    if (auth) {
        auth += 3;
        const char *end = auth + strcspn(auth, "/?#");
        for (const char *p = auth; p < end; p++)
            if (*p == '@') at = p;
        if (at) colon = memchr(auth, ':', (size_t)(at - auth));
    }
    if (!colon) {
        snprintf(out, cap, "%s", target);
        return;
    }
    snprintf(out, cap, "%.*s:***%s", (int)(colon - target), target, at);
}

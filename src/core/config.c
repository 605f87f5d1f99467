/* The option table: parsing and validation of defaults, environment and flags. */
#include "core/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const config_option_t *o, void *cfg, const char *v, const char *source,
                     char *err, size_t cap)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < o->min || x > o->max) {
            snprintf(err, cap,
                     "invalid value '%s' for %s (%s): expected an integer from %lld to %lld", v,
                     o->name, source, o->min, o->max);
            return -1;
        }
        *(long long *)field = x;
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
            *(int *)field = 1;
        } else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
                   !strcmp(v, "off")) {
            *(int *)field = 0;
        } else {
            snprintf(err, cap, "invalid value '%s' for %s (%s): expected true or false", v, o->name,
                     source);
            return -1;
        }
        return 0;
    default: {
        char *copy = strdup(v);
        if (!copy) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    }
}

static const config_option_t *find(const config_option_t *opts, size_t n, const char *name,
                                   size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
    return NULL;
}

int config_load(const config_option_t *opts, size_t nopts, void *cfg, int argc, char **argv,
                char **positional, int max_positional, int *npositional, char *err, size_t cap)
{
    *npositional = 0;
    bool listed[nopts ? nopts : 1]; /* OPT_LIST options already given on the command line */
    memset(listed, 0, sizeof listed);
    /* Every string NULL first, so that config_free is safe after a failure anywhere. */
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].type == OPT_STRING || opts[i].type == OPT_LIST)
            *(char **)((char *)cfg + opts[i].offset) = NULL;
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].def && set_value(&opts[i], cfg, opts[i].def, "default", err, cap) < 0)
            return -1;
    }
    for (size_t i = 0; i < nopts; i++) {
        char env[96] = "PARLOR_";
        size_t k = strlen(env);
        for (const char *p = opts[i].name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && set_value(&opts[i], cfg, v, env, err, cap) < 0) return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            if (*npositional >= max_positional) {
                snprintf(err, cap, "unexpected argument '%s'", a);
                return -1;
            }
            positional[(*npositional)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const config_option_t *o = find(opts, nopts, name, len);
        if (!o) {
            snprintf(err, cap, "unknown option '%s' (see --help)", a);
            return -1;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (o->type == OPT_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            v = "true";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            snprintf(err, cap, "option --%s needs a value", o->name);
            return -1;
        }
        if (o->type == OPT_LIST && listed[o - opts]) { /* repeated: append */
            char **f = (char **)((char *)cfg + o->offset);
            size_t n = strlen(*f), m = strlen(v);
            char *joined = malloc(n + m + 2);
            if (!joined) {
                snprintf(err, cap, "out of memory");
                return -1;
            }
            memcpy(joined, *f, n);
            joined[n] = ' ';
            memcpy(joined + n + 1, v, m + 1);
            free(*f);
            *f = joined;
            continue;
        }
        if (set_value(o, cfg, v, "command line", err, cap) < 0) return -1;
        if (o->type == OPT_LIST) listed[o - opts] = true;
    }
    return 0;
}

void config_print_help(const config_option_t *opts, size_t nopts, FILE *out)
{
    for (size_t i = 0; i < nopts; i++) {
        const config_option_t *o = &opts[i];
        char env[96] = "PARLOR_";
        size_t k = strlen(env);
        for (const char *p = o->name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = '\0';
        fprintf(out, "  --%-24s %s\n", o->name, o->help);
        fprintf(out, "  %-26s env %s; default %s", "", env, o->def && *o->def ? o->def : "(none)");
        if (o->type == OPT_INT) fprintf(out, "; %lld..%lld", o->min, o->max);
        fputc('\n', out);
    }
}

void config_free(const config_option_t *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].type == OPT_STRING || opts[i].type == OPT_LIST) {
            char **f = (char **)((char *)cfg + opts[i].offset);
            free(*f);
            *f = NULL;
        }
}

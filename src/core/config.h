/* One declared table of options with defaults and bounds (Redis config.c style), filled from
 * defaults, then PARLOR_* environment variables, then --flags; printed by --help. */
#ifndef PARLOR_CORE_CONFIG_H
#define PARLOR_CORE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* OPT_LIST: a string option that may be given several times on the command line; the values
 * are joined with single spaces (the environment variable holds the space-separated list). */
enum { OPT_INT, OPT_STRING, OPT_BOOL, OPT_LIST };

typedef struct {
    const char *name; /* flag --name, environment PARLOR_NAME (upper case, '-' -> '_') */
    int type;
    size_t offset;      /* of a long long (OPT_INT), char * (OPT_STRING) or int (OPT_BOOL) */
    const char *def;    /* default, as it would be written on the command line */
    long long min, max; /* bounds for OPT_INT */
    const char *help;
} config_option_t;

/* Fills cfg. Positional arguments (not starting with "--") are collected in order into
 * positional[0..*npositional) (at most max_positional). Returns 0, or -1 with a message in err. */
int config_load(const config_option_t *opts, size_t nopts, void *cfg, int argc, char **argv,
                char **positional, int max_positional, int *npositional, char *err, size_t cap);
void config_print_help(const config_option_t *opts, size_t nopts, FILE *out);
/* Frees the strings config_load allocated. */
void config_free(const config_option_t *opts, size_t nopts, void *cfg);

#endif

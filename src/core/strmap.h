/* A chained hash map from strings (copied) to pointers, growing by doubling. Single-threaded. */
#ifndef PARLOR_CORE_STRMAP_H
#define PARLOR_CORE_STRMAP_H

#include <stddef.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    size_t hash;
    void *value;
    char key[];
} strmap_entry_t;

typedef struct {
    strmap_entry_t **buckets;
    size_t nbuckets, count;
} strmap_t;

int strmap_init(strmap_t *m);
/* Frees the map; free_value (may be NULL) is called on every value. */
void strmap_free(strmap_t *m, void (*free_value)(void *));
void *strmap_get(const strmap_t *m, const char *key);
/* Inserts or replaces; returns 0 or -1 on allocation failure. */
int strmap_set(strmap_t *m, const char *key, void *value);
/* Removes key and returns its value (NULL when absent). */
void *strmap_remove(strmap_t *m, const char *key);
/* Calls fn on every entry; fn returns non-zero to remove the entry (it frees the value). */
void strmap_sweep(strmap_t *m, int (*fn)(const char *key, void *value, void *arg), void *arg);

#endif

/* String-keyed hash map. */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int strmap_init(strmap_t *m)
{
    m->nbuckets = 64;
    m->count = 0;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    return m->buckets ? 0 : -1;
}

void strmap_free(strmap_t *m, void (*free_value)(void *))
{
    for (size_t i = 0; m->buckets && i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            if (free_value) free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->count = m->nbuckets = 0;
}

static strmap_entry_t **slot(const strmap_t *m, const char *key, size_t h)
{
    strmap_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0)) pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    strmap_entry_t *e = *slot(m, key, hash_str(key));
    return e ? e->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t n = m->nbuckets * 2;
    strmap_entry_t **b = calloc(n, sizeof *b);
    if (!b) return; /* keep the longer chains */
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int strmap_set(strmap_t *m, const char *key, void *value)
{
    size_t h = hash_str(key);
    strmap_entry_t **pp = slot(m, key, h);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    size_t len = strlen(key);
    strmap_entry_t *e = malloc(sizeof *e + len + 1);
    if (!e) return -1;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, len + 1);
    *pp = e;
    if (++m->count > m->nbuckets) grow(m);
    return 0;
}

void *strmap_remove(strmap_t *m, const char *key)
{
    strmap_entry_t **pp = slot(m, key, hash_str(key));
    strmap_entry_t *e = *pp;
    if (!e) return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->count--;
    return v;
}

void strmap_sweep(strmap_t *m, int (*fn)(const char *key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t **pp = &m->buckets[i];
        while (*pp) {
            strmap_entry_t *e = *pp;
            if (fn(e->key, e->value, arg)) {
                *pp = e->next;
                free(e);
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

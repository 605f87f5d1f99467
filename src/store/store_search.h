/* Full-text search's definition, shared by every engine so that all return the same hits
 * (issue 16). The engines' indexes (SQLite FTS5, PostgreSQL GIN over a tsvector) only find
 * candidates, a superset of the hits; store_search_match below decides, and
 * store_search_snippet makes the snippet, the same way on both.
 *
 * A word is a maximal run of bytes that are ASCII letters or digits or bytes >= 0x80 (any
 * non-ASCII character), valid UTF-8, at most STORE_SEARCH_WORD_MAX bytes; ASCII letters compare
 * case-insensitively (others exactly). A query is 1..STORE_SEARCH_WORDS_MAX words separated
 * by spaces; a message matches when each query word but the last equals one of its words and
 * the last is the start of one of its words (prefix match, as users type) when the last has at
 * least STORE_SEARCH_PREFIX_MIN characters, or equals one of its words when it is shorter: a
 * one- or two-letter prefix would make nearly every message a candidate (~0.4 s per request
 * over a large history), while a short whole word ("ok", "hi") is one index lookup. */
#ifndef PARLOR_STORE_STORE_SEARCH_H
#define PARLOR_STORE_STORE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_common.h"

/* A last query word of fewer characters (UTF-8 code points) matches whole words only. */
#define STORE_SEARCH_PREFIX_MIN 3

typedef struct {
    size_t n;
    bool prefix; /* the last word matches as a prefix (it has >= STORE_SEARCH_PREFIX_MIN chars) */
    char w[STORE_SEARCH_WORDS_MAX][STORE_SEARCH_WORD_MAX + 1]; /* lowercased ASCII */
    size_t len[STORE_SEARCH_WORDS_MAX];
} store_search_query_t;

/* What every engine's SEARCH does first: resets the outputs and the arena, parses the query
 * into q, and checks the inputs. Returns STORE_OK with *by_conv (a search within one
 * conversation) and *limit (clamped) set, or STORE_E_INVALID. */
int store_search_begin(store_search_t *op, store_arena_t *a, store_search_query_t *q, bool *by_conv,
                       size_t *limit);
/* Parses q; false when it is not a query as defined above. */
bool store_search_parse(str_t q, store_search_query_t *out);
/* Whether content matches the query. */
bool store_search_match(const store_search_query_t *q, str_t content);
/* The snippet of a matching content into the arena: HTML-escaped text around the first hit,
 * every hit word inside it wrapped in <mark>...</mark>, "…" where it was cut. */
int store_search_snippet(const store_search_query_t *q, str_t content, store_arena_t *a,
                         str_t *out);
/* The FTS5 query: each word a quoted phrase, ANDed, the last with a prefix star (if prefix). */
void store_search_fts5(const store_search_query_t *q, char *out, size_t cap);
/* The PostgreSQL tsquery over parlor_search_vector's lexemes (bytes >= 0x80 as \ooo). */
void store_search_tsquery(const store_search_query_t *q, char *out, size_t cap);
#define STORE_SEARCH_QUERY_TEXT (STORE_SEARCH_WORDS_MAX * (STORE_SEARCH_WORD_MAX * 8 + 16) + 16)

#endif

/* Pair coalescing without a sort: the one implementation, shared by edges.c (the grid's
 * quotient, the contraction's edge relabel, coalesce_pairs) and selection.c (the budget's
 * contracted unit graph). Static inline, as common.h: each set gets its own copy.
 *
 * A coalesced edge list is the set of pairs (s, d) sorted by (s, d). Here it is built in
 * O(pairs + nodes) from three steps:
 *
 *   1. bucket:   the sources s of the candidate pairs are bucketed by target d (a
 *                counting sort: `bucket`, with `start` the exclusive prefix sums of the
 *                counts, K + 1 entries);
 *   2. distinct: the buckets are walked in increasing d with a "last target seen" mark
 *                per source: a source meets each target at most once per bucket, so the
 *                first copy of (s, d) in bucket d is kept (the buckets are compacted in
 *                place) and `fill[s]` counts s's distinct targets; returns their total E';
 *   3. write:    (s, d) goes to the next slot of s's row (the prefix sums of `fill`),
 *                walking the compacted buckets in increasing d: rows in s order, targets
 *                ascending within a row.
 *
 * Steps 2 and 3 exist for two index types of the scratch arrays (start, bucket, last,
 * fill): int32_t (suffix _32: half the memory traffic, used when every count and index
 * fits) and int64_t (_64); the output is int64 either way. This header instantiates them
 * by including itself with DHT_T (the type) and DHT_S (the suffix) defined.
 *
 * edges.c runs step 1 on pairs it stores once (and its caller allocates the output
 * between steps 2 and 3, so that it has its exact size); dht_pairs_coalesce runs the
 * three steps in one call on caller scratch bounded by the number of pairs, its step 1
 * in two passes over the edge list (count, then fill). No globals: re-entrant. */
#if defined(DHT_T)
/* ------------------------------------------------- the typed steps (DHT_T, DHT_S) */

/* Step 1 on stored pairs: pairs (2c: s, d interleaved, d < k), start (k + 1) holding the
 * number of pairs of each target d in start[d] (start[k] unused); bucket (c) receives the
 * sources by target, start the exclusive prefix sums (start[k] = c). */
static inline void DHT_S(dht_bucket)(const DHT_T *restrict pairs, int64_t c, int64_t k,
                                     DHT_T *restrict start, DHT_T *restrict bucket) {
    DHT_T total = 0;
    for (int64_t v = 0; v < k; ++v) {
        total += start[v];
        start[v] = total; /* the end of bucket v: filled downwards */
    }
    start[k] = total;
    for (int64_t i = 0; i < c; ++i) bucket[--start[pairs[2 * i + 1]]] = pairs[2 * i];
}

/* Step 2: buckets (start, bucket from step 1) compacted in place to their distinct
 * sources (start rewritten to the compacted offsets), fill (k) the number of distinct
 * targets per source; last (k) is scratch. Returns E'. Branch-free: whether (s, d) is
 * new is unpredictable, so it is added rather than tested. */
static inline int64_t DHT_S(dht_distinct)(DHT_T *restrict start, DHT_T *restrict bucket,
                                          int64_t k, DHT_T *restrict last,
                                          DHT_T *restrict fill) {
    for (int64_t v = 0; v < k; ++v) {
        last[v] = -1;
        fill[v] = 0;
    }
    int64_t w = 0; /* (int64_t locals: no conversions in the address arithmetic) */
    for (int64_t d = 0; d < k; ++d) {
        int64_t begin = start[d], end = start[d + 1]; /* (start[d + 1] not yet rewritten) */
        start[d] = (DHT_T)w;
        for (int64_t j = begin; j < end; ++j) {
            int64_t s = bucket[j];
            int64_t fresh = last[s] != d;
            last[s] = (DHT_T)d;
            bucket[w] = (DHT_T)s;
            w += fresh;
            fill[s] += (DHT_T)fresh;
        }
    }
    start[k] = (DHT_T)w;
    return w;
}

/* Step 3: the E' pairs (out_src, out_dst), sorted, from the compacted buckets; fill (k)
 * is consumed (it becomes the row ends). */
static inline void DHT_S(dht_write)(const DHT_T *restrict start, const DHT_T *restrict bucket,
                                    int64_t k, DHT_T *restrict fill, int64_t *restrict out_src,
                                    int64_t *restrict out_dst) {
    DHT_T total = 0;
    for (int64_t v = 0; v < k; ++v) {
        DHT_T c = fill[v];
        fill[v] = total;
        total += c;
    }
    for (int64_t d = 0; d < k; ++d)
        for (int64_t j = start[d]; j < start[d + 1]; ++j) out_dst[fill[bucket[j]]++] = d;
    int64_t p = 0;
    for (int64_t s = 0; s < k; ++s)
        for (; p < (int64_t)fill[s]; ++p) out_src[p] = s;
}

#else
#ifndef DHTGRAPH_NATIVE_PAIRS_H
#define DHTGRAPH_NATIVE_PAIRS_H

#include <stdint.h>

#define DHT_T int32_t
#define DHT_S(name) name##_32
#include "pairs.h"
#undef DHT_S
#undef DHT_T
#define DHT_T int64_t
#define DHT_S(name) name##_64
#include "pairs.h"
#undef DHT_S
#undef DHT_T

/* ---------------------------------------------------------- pairs of an edge list */

/* The flags of the pairs of an edge list. */
#define DHT_PAIRS_SKIP_LOOPS 1 /* leave out the pairs s == d */
#define DHT_PAIRS_UNDIRECTED 2 /* each pair as (min, max) */

/* The pairs of an edge list: (map[src[e]], map[dst[e]]), or (src[e], dst[e]) without a
 * map, for e < m (as (min, max) with DHT_PAIRS_UNDIRECTED), compacted a chunk of CHUNK
 * edges at a time into a local buffer, leaving out a loop s == d with
 * DHT_PAIRS_SKIP_LOOPS, and a pair (s, d) when seen[d] == s: the last pair emitted with
 * target d had source s, so this one is a repeat (fewer repeats in the buckets: a block's
 * edges into one block come in runs when the list is sorted by source). seen (k) is reset
 * here, so both passes emit the same pairs. */
#define DHT_CHUNK 512
#define DHT_EDGE_PAIRS(BODY)                                                           \
    {                                                                                   \
        int64_t pair[2 * DHT_CHUNK];                                                    \
        int64_t skip = flags & DHT_PAIRS_SKIP_LOOPS;                                    \
        int64_t undirected = (flags & DHT_PAIRS_UNDIRECTED) != 0;                       \
        for (int64_t v = 0; v < k; ++v) seen[v] = -1;                                   \
        for (int64_t e0 = 0; e0 < m; e0 += DHT_CHUNK) {                                 \
            int64_t e1 = e0 + DHT_CHUNK < m ? e0 + DHT_CHUNK : m, c = 0;                \
            for (int64_t e = e0; e < e1; ++e) {                                         \
                int64_t u = map ? map[src[e]] : src[e];                                 \
                int64_t w = map ? map[dst[e]] : dst[e];                                 \
                int64_t swap = undirected & (w < u);                                    \
                int64_t s = swap ? w : u, d = swap ? u : w;                             \
                pair[2 * c] = s;                                                        \
                pair[2 * c + 1] = d;                                                    \
                c += (seen[d] != s) & !(skip & (s == d));                               \
                seen[d] = s;                                                            \
            }                                                                           \
            for (int64_t i = 0; i < c; ++i) {                                           \
                int64_t s = pair[2 * i], d = pair[2 * i + 1];                           \
                BODY;                                                                   \
            }                                                                           \
        }                                                                               \
    }

/* The argument check of an edge list: src, dst (m) in 0..n-1 (n: the map's length, or k
 * without a map), map (n) in 0..k-1. Returns 0, -1 (src or dst out of range) or -2 (map
 * out of range). */
static inline int64_t dht_pairs_check(const int64_t *restrict src, const int64_t *restrict dst,
                                      int64_t m, const int64_t *restrict map, int64_t n,
                                      int64_t k) {
    for (int64_t e = 0; e < m; ++e)
        if (src[e] < 0 || src[e] >= n || dst[e] < 0 || dst[e] >= n) return -1;
    if (map)
        for (int64_t v = 0; v < n; ++v)
            if (map[v] < 0 || map[v] >= k) return -2;
    return 0;
}

/* Step 1's first pass, for checked arguments: count (k) receives the candidates per
 * target; returns their number (at most m). seen: scratch (k). */
static inline int64_t dht_pairs_count(const int64_t *restrict src, const int64_t *restrict dst,
                                      int64_t m, const int64_t *restrict map, int64_t k,
                                      int64_t flags, int64_t *restrict seen,
                                      int64_t *restrict count) {
    for (int64_t v = 0; v < k; ++v) count[v] = 0;
    int64_t total = 0;
    DHT_EDGE_PAIRS((void)s; ++count[d]; ++total)
    return total;
}

/* Step 1's second pass (arguments as in pass 1, count from it; start (k + 1), bucket
 * (the candidates), next (k) scratch): the sources bucketed by target. */
static inline void dht_pairs_fill(const int64_t *restrict src, const int64_t *restrict dst,
                                  int64_t m, const int64_t *restrict map, int64_t k,
                                  int64_t flags, int64_t *restrict seen,
                                  const int64_t *restrict count, int64_t *restrict start,
                                  int64_t *restrict bucket, int64_t *restrict next) {
    int64_t total = 0;
    for (int64_t v = 0; v < k; ++v) {
        start[v] = total;
        next[v] = total;
        total += count[v];
    }
    start[k] = total;
    DHT_EDGE_PAIRS(bucket[next[d]++] = s)
}

/* The three steps in one call, for checked arguments (see dht_pairs_check): the E'
 * coalesced pairs into out[0..E') (sources) and out[E'..2E') (targets); out has room
 * for 2m. scratch: 5k + 1 + m. Returns E'. */
static inline int64_t dht_pairs_coalesce(const int64_t *src, const int64_t *dst, int64_t m,
                                         const int64_t *map, int64_t k, int64_t flags,
                                         int64_t *scratch, int64_t *out) {
    if (m == 0) return 0;
    int64_t *seen = scratch, *count = seen + k, *last = count + k, *fill = last + k;
    int64_t *start = fill + k, *bucket = start + k + 1;
    dht_pairs_count(src, dst, m, map, k, flags, seen, count);
    dht_pairs_fill(src, dst, m, map, k, flags, seen, count, start, bucket, fill);
    int64_t total = dht_distinct_64(start, bucket, k, last, fill);
    dht_write_64(start, bucket, k, fill, out, out + total);
    return total;
}

#endif
#endif

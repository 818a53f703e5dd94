/* Pair coalescing without a sort: the one implementation, shared by edges.c (the grid's
 * quotient, the contraction's edge relabel, coalesce_pairs) and selection.c (the budget's
 * contracted unit graph). Static inline, as common.h: each set gets its own copy.
 *
 * A coalesced edge list is the set of pairs (s, d) sorted by (s, d). Here it is built in
 * O(pairs + nodes) from three passes:
 *
 *   1. count:  the candidate pairs are counted by their target d;
 *   2. fill:   the sources s are bucketed by target (a counting sort: `bucket`, with
 *              `start` the exclusive prefix sums, K + 1 entries), then the buckets are
 *              walked in increasing d with a "last target seen" marker per source: a
 *              source meets each target at most once per bucket, so `fill[s]` counts
 *              its distinct targets, met in increasing order; returns their total E';
 *   3. write:  the same walk again writes (s, d) at s's row offset (the prefix sums of
 *              `fill`): rows in s order, targets ascending within a row.
 *
 * edges.c exports the passes one by one (its caller allocates between them, so every
 * buffer has its exact size); dht_pairs_coalesce runs all three in one call on scratch
 * bounded by the number of pairs. No globals: the kernels are re-entrant. */
#ifndef DHTGRAPH_NATIVE_PAIRS_H
#define DHTGRAPH_NATIVE_PAIRS_H

#include <stdint.h>

/* ------------------------------------------------------------------ the pair walk */

static inline void dht_prefix(const int64_t *count, int64_t k, int64_t *start) {
    int64_t total = 0;
    for (int64_t v = 0; v < k; ++v) {
        start[v] = total;
        total += count[v];
    }
    start[k] = total;
}

/* The walk of one bucket d (the sources of the pairs with target d): a source met for
 * the first time in this bucket (last[s] != d) counts once in fill[s]; returns how many
 * sources were new. Branch-free: whether (s, d) is new is unpredictable, so it is added
 * rather than tested. */
static inline int64_t dht_walk_bucket(const int64_t *restrict start,
                                      const int64_t *restrict bucket, int64_t d,
                                      int64_t *restrict last, int64_t *restrict fill) {
    int64_t fresh_total = 0;
    for (int64_t j = start[d]; j < start[d + 1]; ++j) {
        int64_t s = bucket[j];
        int64_t fresh = last[s] != d;
        last[s] = d;
        fill[s] += fresh;
        fresh_total += fresh;
    }
    return fresh_total;
}

/* Pass 2's second half: distinct targets per source (fill), their total. */
static inline int64_t dht_count_distinct(const int64_t *start, const int64_t *bucket,
                                         int64_t k, int64_t *last, int64_t *fill) {
    for (int64_t v = 0; v < k; ++v) {
        last[v] = -1;
        fill[v] = 0;
    }
    int64_t total = 0;
    for (int64_t d = 0; d < k; ++d) total += dht_walk_bucket(start, bucket, d, last, fill);
    return total;
}

/* Pass 3: the coalesced pairs; `fill` (k) is consumed (it becomes the row offsets). A
 * repeat of (s, d) rewrites the slot where (s, d) already is (the last one written in
 * s's row), which keeps the loop branch-free. */
static inline void dht_pairs_write(const int64_t *start, const int64_t *bucket, int64_t k,
                                   int64_t *last, int64_t *fill, int64_t *out_src,
                                   int64_t *out_dst) {
    int64_t total = 0;
    for (int64_t v = 0; v < k; ++v) {
        int64_t c = fill[v];
        fill[v] = total;
        total += c;
        last[v] = -1;
    }
    for (int64_t d = 0; d < k; ++d) {
        for (int64_t j = start[d]; j < start[d + 1]; ++j) {
            int64_t s = bucket[j];
            int64_t fresh = last[s] != d;
            int64_t p = fill[s] - 1 + fresh;
            last[s] = d;
            out_src[p] = s;
            out_dst[p] = d;
            fill[s] += fresh;
        }
    }
}

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

/* Pass 1 for checked arguments: count (k) receives the candidates per target; returns
 * their number (at most m). seen: scratch (k). */
static inline int64_t dht_pairs_count(const int64_t *restrict src, const int64_t *restrict dst,
                                      int64_t m, const int64_t *restrict map, int64_t k,
                                      int64_t flags, int64_t *restrict seen,
                                      int64_t *restrict count) {
    for (int64_t v = 0; v < k; ++v) count[v] = 0;
    int64_t total = 0;
    DHT_EDGE_PAIRS((void)s; ++count[d]; ++total)
    return total;
}

/* Pass 2 (arguments as in pass 1; start (k + 1), bucket (the candidates), last and fill
 * (k)). Returns the number of coalesced pairs. */
static inline int64_t dht_pairs_fill(const int64_t *restrict src, const int64_t *restrict dst,
                                     int64_t m, const int64_t *restrict map, int64_t k,
                                     int64_t flags, int64_t *restrict seen,
                                     const int64_t *restrict count, int64_t *restrict start,
                                     int64_t *restrict bucket, int64_t *restrict last,
                                     int64_t *restrict fill) {
    dht_prefix(count, k, start);
    int64_t *next = fill;
    for (int64_t v = 0; v < k; ++v) next[v] = start[v];
    DHT_EDGE_PAIRS(bucket[next[d]++] = s)
    return dht_count_distinct(start, bucket, k, last, fill);
}

/* The three passes in one call, for checked arguments (see dht_pairs_check): the E'
 * coalesced pairs into out[0..E') (sources) and out[E'..2E') (targets); out has room
 * for 2m. scratch: 5k + 1 + m. Returns E'. */
static inline int64_t dht_pairs_coalesce(const int64_t *src, const int64_t *dst, int64_t m,
                                         const int64_t *map, int64_t k, int64_t flags,
                                         int64_t *scratch, int64_t *out) {
    if (m == 0) return 0;
    int64_t *seen = scratch, *count = seen + k, *last = count + k, *fill = last + k;
    int64_t *start = fill + k, *bucket = start + k + 1;
    dht_pairs_count(src, dst, m, map, k, flags, seen, count);
    int64_t total = dht_pairs_fill(src, dst, m, map, k, flags, seen, count, start, bucket,
                                   last, fill);
    dht_pairs_write(start, bucket, k, last, fill, out, out + total);
    return total;
}

#endif

/* Edge coalescing without a sort (dhtgraph.graph.pixel.grid_quotient, the contraction's
 * edge relabel, unique pairs).
 *
 * A coalesced edge list is the set of pairs (s, d) sorted by (s, d). Here it is built in
 * O(pairs + nodes) from three passes, each a kernel of its own (the caller allocates
 * between them, so every buffer has its exact size):
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
 * The pairs come either from the 4-neighbour pixel grid under block labels (both
 * directions of every pair of neighbouring pixels with different labels, and a loop per
 * block on request) or from an edge list, optionally mapped through labels.
 *
 * Every index is checked in pass 1, which returns -1 when one is out of range. No
 * globals: the kernels are re-entrant. */
#include <stdint.h>

/* ------------------------------------------------------------------ the pair walk */

static void prefix(const int64_t *count, int64_t k, int64_t *start) {
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
static inline int64_t walk_bucket(const int64_t *restrict start, const int64_t *restrict bucket,
                                  int64_t d, int64_t *restrict last, int64_t *restrict fill) {
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
static int64_t count_distinct(const int64_t *start, const int64_t *bucket, int64_t k,
                              int64_t *last, int64_t *fill) {
    for (int64_t v = 0; v < k; ++v) {
        last[v] = -1;
        fill[v] = 0;
    }
    int64_t total = 0;
    for (int64_t d = 0; d < k; ++d) total += walk_bucket(start, bucket, d, last, fill);
    return total;
}

/* Pass 3: the coalesced pairs; `fill` (k) is consumed (it becomes the row offsets). A
 * repeat of (s, d) rewrites the slot where (s, d) already is (the last one written in
 * s's row), which keeps the loop branch-free. */
void dht_write_pairs(const int64_t *start, const int64_t *bucket, int64_t k, int64_t *last,
                     int64_t *fill, int64_t *out_src, int64_t *out_dst) {
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

/* ------------------------------------------------------------- pairs of the grid */

/* The pairs of one pixel row of the 4-neighbour grid, compacted into pair (2 per pair,
 * room for 2·width pairs): (a, c) for each horizontal pair in row y and each vertical
 * pair between rows y and y + 1 whose labels a != c. A horizontal pair that repeats the
 * pair of the one above it, or a vertical pair repeating the one to its left (along a
 * straight boundary), is left out: the same set, fewer repeats. Branch-free (whether a
 * pixel lies on a boundary is unpredictable); the caller's loop over the compacted pairs
 * then only touches real pairs. Returns their number. */
#define REPEATS(p, q, a, c) ((((p) == (a)) & ((q) == (c))) | (((p) == (c)) & ((q) == (a))))
static int64_t row_pairs(const int64_t *restrict row, int64_t y, int64_t height,
                         int64_t width, int64_t *restrict pair) {
    const int64_t *up = row - width, *down = row + width;
    int64_t m = 0;
    for (int64_t x = 0; x + 1 < width; ++x) {
        int64_t a = row[x], c = row[x + 1];
        int64_t e = a != c;
        if (y > 0) e &= !REPEATS(up[x], up[x + 1], a, c);
        pair[2 * m] = a;
        pair[2 * m + 1] = c;
        m += e;
    }
    if (y + 1 < height) {
        for (int64_t x = 0; x < width; ++x) {
            int64_t a = row[x], c = down[x];
            int64_t e = a != c;
            if (x > 0) e &= !REPEATS(row[x - 1], down[x - 1], a, c);
            pair[2 * m] = a;
            pair[2 * m + 1] = c;
            m += e;
        }
    }
    return m;
}

#define GRID_ROWS(BODY)         /* (no pixels: no row pointers, NULL + 0 included) */ \
    if (width > 0)                                                                      \
    for (int64_t b = 0; b < num_images; ++b)                                            \
        for (int64_t y = 0; y < height; ++y) {                                          \
            int64_t m = row_pairs(labels + (b * height + y) * width, y, height, width,  \
                                  pair);                                                \
            for (int64_t i = 0; i < m; ++i) {                                           \
                int64_t a = pair[2 * i], c = pair[2 * i + 1];                           \
                BODY;                                                                   \
            }                                                                           \
        }

/* The grid's quotient is symmetric, so only the undirected pairs lo < hi are bucketed
 * (by hi, holding lo: half the candidates of both directions); the directed rows are
 * then laid out in closed form, as the tensor implementation does: block v's row holds
 * its lower neighbours, its loop (v < num_loops), then its higher neighbours.
 *
 * Pass 1 for the grid: count (k) receives the number of candidate pairs per upper end
 * hi. Labels must lie in 0..k-1. pair: scratch of 4·width. Returns the number of
 * candidates, or -1 for a label out of range. */
int64_t dht_grid_count(const int64_t *restrict labels, int64_t num_images, int64_t height,
                       int64_t width, int64_t k, int64_t *restrict pair,
                       int64_t *restrict count) {
    int64_t n = num_images * height * width;
    for (int64_t v = 0; v < n; ++v)
        if (labels[v] < 0 || labels[v] >= k) return -1;
    for (int64_t v = 0; v < k; ++v) count[v] = 0;
    int64_t total = 0;
    GRID_ROWS(++count[a > c ? a : c]; ++total)
    return total;
}

/* Pass 2 for the grid: `count` from pass 1; start (k + 1) and bucket (the candidates)
 * are written, then the walk over the upper ends in increasing order with a "last seen"
 * mark per lower end counts each block's distinct higher (up) and lower (down)
 * neighbours (last, up, down: k). Returns the number of directed pairs, loops included. */
int64_t dht_grid_fill(const int64_t *restrict labels, int64_t num_images, int64_t height,
                      int64_t width, int64_t k, int64_t num_loops, int64_t *restrict pair,
                      const int64_t *restrict count, int64_t *restrict start,
                      int64_t *restrict bucket, int64_t *restrict last, int64_t *restrict up,
                      int64_t *restrict down) {
    prefix(count, k, start);
    int64_t *next = up; /* the bucket cursors, before up is counted */
    for (int64_t v = 0; v < k; ++v) next[v] = start[v];
    GRID_ROWS(if (a < c) bucket[next[c]++] = a; else bucket[next[a]++] = c)
    for (int64_t v = 0; v < k; ++v) {
        last[v] = -1;
        up[v] = 0;
        down[v] = 0;
    }
    int64_t total = 0;
    for (int64_t hi = 0; hi < k; ++hi) {
        int64_t below = walk_bucket(start, bucket, hi, last, up);
        down[hi] = below;
        total += below;
    }
    return 2 * total + num_loops;
}

/* Pass 3 for the grid: the directed pairs (out_src, out_dst: the count pass 2 returned),
 * sorted by (source, target). row (k + 1) is scratch; last, up and down are consumed.
 * Higher neighbours are written by the walk over the upper ends (increasing, so each
 * row's come out sorted; a repeat rewrites the slot of its first copy, the last one
 * written in that row: branch-free), lower neighbours by a walk over the rows in
 * increasing order reading the higher neighbours back (so they come out sorted too). */
void dht_grid_write(const int64_t *restrict start, const int64_t *restrict bucket, int64_t k,
                    int64_t num_loops, int64_t *restrict last, int64_t *restrict up,
                    int64_t *restrict down, int64_t *restrict row, int64_t *restrict out_src,
                    int64_t *restrict out_dst) {
    int64_t total = 0;
    for (int64_t v = 0; v < k; ++v) {
        int64_t loop = v < num_loops;
        row[v] = total;
        total += down[v] + loop + up[v];
        up[v] = row[v] + down[v] + loop; /* cursor of the higher neighbours */
        down[v] = row[v];                /* cursor of the lower neighbours */
        if (loop) out_dst[up[v] - 1] = v;
        last[v] = -1;
    }
    row[k] = total;
    for (int64_t hi = 0; hi < k; ++hi) {
        for (int64_t j = start[hi]; j < start[hi + 1]; ++j) {
            int64_t lo = bucket[j];
            int64_t fresh = last[lo] != hi;
            last[lo] = hi;
            out_dst[up[lo] - 1 + fresh] = hi;
            up[lo] += fresh;
        }
    }
    /* Row lo's lower neighbours are all written once the rows before it are read. */
    for (int64_t lo = 0; lo < k; ++lo) {
        for (int64_t p = down[lo] + (lo < num_loops); p < row[lo + 1]; ++p)
            out_dst[down[out_dst[p]]++] = lo;
        for (int64_t p = row[lo]; p < row[lo + 1]; ++p) out_src[p] = lo;
    }
}

/* ---------------------------------------------------------- pairs of an edge list */

/* The pairs of an edge list: (map[src[e]], map[dst[e]]), or (src[e], dst[e]) without a
 * map, for e < m, compacted a chunk of CHUNK edges at a time into a local buffer (as the
 * grid's rows are), leaving out a loop s == d when skip_loops, and a pair (s, d) when
 * seen[d] == s: the last pair emitted with target d had source s, so this one is a repeat
 * (fewer repeats in the buckets: a block's edges into one block come in runs when the
 * list is sorted by source). seen (k) is reset here, so both passes emit the same pairs. */
#define CHUNK 512
#define EDGE_PAIRS(BODY)                                                               \
    {                                                                                   \
        int64_t pair[2 * CHUNK];                                                        \
        for (int64_t v = 0; v < k; ++v) seen[v] = -1;                                   \
        for (int64_t e0 = 0; e0 < m; e0 += CHUNK) {                                     \
            int64_t e1 = e0 + CHUNK < m ? e0 + CHUNK : m, c = 0;                        \
            for (int64_t e = e0; e < e1; ++e) {                                         \
                int64_t s = map ? map[src[e]] : src[e];                                 \
                int64_t d = map ? map[dst[e]] : dst[e];                                 \
                pair[2 * c] = s;                                                        \
                pair[2 * c + 1] = d;                                                    \
                c += (seen[d] != s) & !(skip_loops & (s == d));                         \
                seen[d] = s;                                                            \
            }                                                                           \
            for (int64_t i = 0; i < c; ++i) {                                           \
                int64_t s = pair[2 * i], d = pair[2 * i + 1];                           \
                BODY;                                                                   \
            }                                                                           \
        }                                                                               \
    }

/* Pass 1 for an edge list of m edges: src, dst in 0..n-1 (n: the map's length, or k
 * without a map), map values in 0..k-1. skip_loops (0 or 1): leave out pairs s == d.
 * count (k) receives the candidates per target; returns their number, or -1 for an
 * index out of range. */
int64_t dht_edges_count(const int64_t *restrict src, const int64_t *restrict dst, int64_t m,
                        const int64_t *restrict map, int64_t n, int64_t k, int64_t skip_loops,
                        int64_t *restrict seen, int64_t *restrict count) {
    for (int64_t e = 0; e < m; ++e)
        if (src[e] < 0 || src[e] >= n || dst[e] < 0 || dst[e] >= n) return -1;
    if (map)
        for (int64_t v = 0; v < n; ++v)
            if (map[v] < 0 || map[v] >= k) return -1;
    for (int64_t v = 0; v < k; ++v) count[v] = 0;
    int64_t total = 0;
    EDGE_PAIRS((void)s; ++count[d]; ++total)
    return total;
}

/* Pass 2 for an edge list (arguments as in pass 1; start (k + 1), bucket (the
 * candidates), last and fill (k) as in dht_grid_fill). Returns the number of coalesced
 * pairs. */
int64_t dht_edges_fill(const int64_t *restrict src, const int64_t *restrict dst, int64_t m,
                       const int64_t *restrict map, int64_t k, int64_t skip_loops,
                       int64_t *restrict seen, const int64_t *restrict count, int64_t *restrict start,
                       int64_t *restrict bucket, int64_t *restrict last, int64_t *restrict fill) {
    prefix(count, k, start);
    int64_t *next = fill;
    for (int64_t v = 0; v < k; ++v) next[v] = start[v];
    EDGE_PAIRS(bucket[next[d]++] = s)
    return count_distinct(start, bucket, k, last, fill);
}

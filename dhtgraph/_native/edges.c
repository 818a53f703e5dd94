/* Edge coalescing without a sort (dhtgraph.graph.pixel.grid_quotient, the contraction's
 * edge relabel, coalesce_pairs): the three passes of pairs.h (count, fill, write), each a
 * kernel of its own, so that the caller allocates between them and every buffer has its
 * exact size.
 *
 * The pairs come either from the 4-neighbour pixel grid under block labels (both
 * directions of every pair of neighbouring pixels with different labels, and a loop per
 * block on request) or from an edge list, optionally mapped through labels.
 *
 * Every index is checked in pass 1, which returns a negative code when one is out of
 * range. No globals: the kernels are re-entrant. */
#include <stdint.h>

#include "pairs.h"

/* Pass 3 of an edge list (after dht_edges_fill): see dht_pairs_write. */
void dht_write_pairs(const int64_t *start, const int64_t *bucket, int64_t k, int64_t *last,
                     int64_t *fill, int64_t *out_src, int64_t *out_dst) {
    dht_pairs_write(start, bucket, k, last, fill, out_src, out_dst);
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
    dht_prefix(count, k, start);
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
        int64_t below = dht_walk_bucket(start, bucket, hi, last, up);
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

/* Pass 1 for an edge list of m edges: src, dst in 0..n-1 (n: the map's length, or k
 * without a map), map values in 0..k-1; flags: DHT_PAIRS_SKIP_LOOPS and
 * DHT_PAIRS_UNDIRECTED. count (k) receives the candidates per target; returns their
 * number, or -1 (src or dst out of range), -2 (map out of range). seen: scratch (k). */
int64_t dht_edges_count(const int64_t *restrict src, const int64_t *restrict dst, int64_t m,
                        const int64_t *restrict map, int64_t n, int64_t k, int64_t flags,
                        int64_t *restrict seen, int64_t *restrict count) {
    int64_t status = dht_pairs_check(src, dst, m, map, n, k);
    if (status < 0) return status;
    return dht_pairs_count(src, dst, m, map, k, flags, seen, count);
}

/* Pass 2 for an edge list (arguments as in pass 1; start (k + 1), bucket (the
 * candidates), last and fill (k)). Returns the number of coalesced pairs. */
int64_t dht_edges_fill(const int64_t *restrict src, const int64_t *restrict dst, int64_t m,
                       const int64_t *restrict map, int64_t k, int64_t flags,
                       int64_t *restrict seen, const int64_t *restrict count,
                       int64_t *restrict start, int64_t *restrict bucket,
                       int64_t *restrict last, int64_t *restrict fill) {
    return dht_pairs_fill(src, dst, m, map, k, flags, seen, count, start, bucket, last, fill);
}

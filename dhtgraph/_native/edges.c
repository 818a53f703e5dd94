/* Edge coalescing without a sort (dhtgraph.graph.pixel.grid_quotient, the contraction's
 * edge relabel, coalesce_pairs): the steps of pairs.h in two calls, so that the caller
 * allocates the output between them with its exact size:
 *
 *   dht_edges_prepare / dht_grid_prepare: the argument check, one pass over the input
 *       storing its candidate pairs (compacted: repeats next to each other left out),
 *       then steps 1 and 2 on them; returns the number of output pairs E' and a work
 *       area (malloc'd here: its size is only known once the input is read);
 *   dht_pairs_write: step 3 into the caller's (2, E') output;
 *   dht_pairs_free: the work area freed, by the caller, once for every work area a
 *       prepare call returned, whether it wrote or not (the binding calls it in a
 *       `finally`, so that nothing raised between the calls leaks the area).
 *
 * The pairs come either from the 4-neighbour pixel grid under block labels (both
 * directions of every pair of neighbouring pixels with different labels, and a loop per
 * block on request) or from an edge list, optionally mapped through labels. The scratch
 * arrays are int32_t when every index and count fits in `limit` (at most INT32_MAX; the
 * caller passes a smaller one to test the int64_t form on small inputs), else int64_t.
 *
 * Every index is checked first; a negative code is returned when one is out of range (or
 * -3 when memory runs out). No globals: the kernels are re-entrant. The typed parts are
 * instantiated by including this file with DHT_T and DHT_S defined (as pairs.h does). */
#if !defined(DHT_T)
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pairs.h"

/* The work area between the two calls: this header, then start (k + 1), last (k) and
 * fill (k) of the scratch type; the buckets are a block of their own. */
typedef struct {
    int64_t narrow;    /* 1: int32_t scratch, 0: int64_t */
    int64_t grid;      /* 1: the grid's layout (see dht_grid_prepare) */
    int64_t k;         /* the number of nodes (blocks) */
    int64_t num_loops; /* grid: blocks 0..num_loops-1 get a loop */
    void *bucket;
    int64_t pad; /* (the arrays after the header stay 16-byte aligned) */
} dht_work;

static dht_work *work_new(int64_t k, int64_t narrow, int64_t grid, int64_t num_loops) {
    size_t size = narrow ? sizeof(int32_t) : sizeof(int64_t);
    dht_work *w = malloc(sizeof(dht_work) + (size_t)(3 * k + 1) * size);
    if (!w) return NULL;
    w->narrow = narrow;
    w->grid = grid;
    w->k = k;
    w->num_loops = num_loops;
    w->bucket = NULL;
    w->pad = 0;
    return w;
}

static int64_t narrow_limit(int64_t limit) { return limit < INT32_MAX ? limit : INT32_MAX; }

/* The boundaries of the 4-neighbour grid, a pixel row at a time, as bytes (1: the two
 * labels differ): hd (width - 1) of the horizontal pairs (x, x + 1) of a row, vd (width)
 * of the vertical pairs between a row and the next. Separate loops without stores at
 * data-dependent places, so that they run at the speed of the loads. */
static void diff_h(const int64_t *restrict row, int64_t width, uint8_t *restrict hd) {
    for (int64_t x = 0; x + 1 < width; ++x) hd[x] = row[x] != row[x + 1];
}

static void diff_v(const int64_t *restrict row, const int64_t *restrict down, int64_t width,
                   uint8_t *restrict vd) {
    for (int64_t x = 0; x < width; ++x) vd[x] = row[x] != down[x];
}

/* min(a, c) of int64_t without a branch (a conditional expression is compiled to an
 * unpredictable jump for the int32_t stores); the max is then a ^ c ^ min. */
#define LOWER(a, c) ((c) ^ (((a) ^ (c)) & -(int64_t)((a) < (c))))

#define DHT_T int32_t
#define DHT_S(name) name##_32
#include "edges.c"
#undef DHT_S
#undef DHT_T
#define DHT_T int64_t
#define DHT_S(name) name##_64
#include "edges.c"
#undef DHT_S
#undef DHT_T

/* ---------------------------------------------------------------------- the calls */

/* The grid's quotient is symmetric, so only the undirected pairs lo < hi are bucketed
 * (by hi, holding lo: half the candidates of both directions); the directed rows are
 * then laid out in closed form, as the tensor implementation does: block v's row holds
 * its lower neighbours, its loop (v < num_loops), then its higher neighbours.
 *
 * labels (num_images·height·width) in 0..k-1 (k >= 1), num_loops in 0..k. Returns the
 * number of directed pairs, loops included, and the work area in *work; or -1 (a label
 * out of range), -2 (num_loops out of range), -3 (out of memory), nothing allocated. */
int64_t dht_grid_prepare(const int64_t *restrict labels, int64_t num_images, int64_t height,
                         int64_t width, int64_t k, int64_t num_loops, int64_t limit,
                         void **work) {
    if (num_loops < 0 || num_loops > k) return -2;
    int64_t n = num_images * height * width;
    for (int64_t v = 0; v < n; ++v)
        if (labels[v] < 0 || labels[v] >= k) return -1;
    int64_t narrow = 4 * n + k <= narrow_limit(limit); /* offsets < E' <= 4n + k */
    dht_work *w = work_new(k, narrow, 1, num_loops);
    if (!w) return -3;
    int64_t total = narrow ? grid_prepare_32(labels, num_images, height, width, w)
                           : grid_prepare_64(labels, num_images, height, width, w);
    if (total < 0) {
        free(w);
        return -3;
    }
    *work = w;
    return 2 * total + num_loops;
}

/* An edge list of m edges: src, dst in 0..n-1 (n: the map's length, or k without a map),
 * map values in 0..k-1 (k >= 1); flags: DHT_PAIRS_SKIP_LOOPS and DHT_PAIRS_UNDIRECTED.
 * Returns the number of coalesced pairs and the work area in *work; or -1 (src or dst
 * out of range), -2 (map out of range), -3 (out of memory), nothing allocated. */
int64_t dht_edges_prepare(const int64_t *restrict src, const int64_t *restrict dst, int64_t m,
                          const int64_t *restrict map, int64_t n, int64_t k, int64_t flags,
                          int64_t limit, void **work) {
    int64_t status = dht_pairs_check(src, dst, m, map, n, k);
    if (status < 0) return status;
    int64_t narrow = m + k <= narrow_limit(limit); /* offsets <= candidates <= m */
    dht_work *w = work_new(k, narrow, 0, 0);
    if (!w) return -3;
    int64_t total = narrow ? edges_prepare_32(src, dst, m, map, flags, w)
                           : edges_prepare_64(src, dst, m, map, flags, w);
    if (total < 0) {
        free(w);
        return -3;
    }
    *work = w;
    return total;
}

/* The work area freed (after the write, or without writing). */
void dht_pairs_free(void *work) {
    dht_work *w = work;
    free(w->bucket);
    free(w);
}

/* Step 3: the pairs (out_src, out_dst: the count the prepare call returned), sorted by
 * (source, target). The work area stays allocated (see dht_pairs_free). */
void dht_pairs_write(void *work, int64_t *restrict out_src, int64_t *restrict out_dst) {
    dht_work *w = work;
    if (w->narrow) {
        if (w->grid)
            grid_write_32(w, out_src, out_dst);
        else
            dht_write_32(start_32(w), w->bucket, w->k, start_32(w) + 2 * w->k + 1, out_src,
                         out_dst);
    } else {
        if (w->grid)
            grid_write_64(w, out_src, out_dst);
        else
            dht_write_64(start_64(w), w->bucket, w->k, start_64(w) + 2 * w->k + 1, out_src,
                         out_dst);
    }
}

#else
/* ------------------------------------------------- the typed parts (DHT_T, DHT_S) */

/* The arrays of the work area: start (k + 1), then last (k), then fill (k). */
static inline DHT_T *DHT_S(start)(dht_work *w) { return (DHT_T *)(w + 1); }

/* The pairs (min, max) of (a[x], c[x]) for the x < count with keep[x], compacted into
 * pair (room for count pairs). Branch-free within a group of 8 (whether a pixel lies on
 * a boundary is unpredictable), a group without any skipped at once (inside blocks).
 * Returns their number. */
static int64_t DHT_S(emit)(const uint8_t *restrict keep, int64_t count,
                           const int64_t *restrict a, const int64_t *restrict c,
                           DHT_T *restrict pair) {
    int64_t m = 0, x = 0;
    for (; x < count; x += 8) {
        int64_t end = x + 8 < count ? x + 8 : count;
        uint64_t any = 0;
        if (end == x + 8) memcpy(&any, keep + x, 8);
        else for (int64_t i = x; i < end; ++i) any |= keep[i];
        if (!any) continue;
        for (int64_t i = x; i < end; ++i) {
            int64_t lo = LOWER(a[i], c[i]);
            pair[2 * m] = (DHT_T)lo;
            pair[2 * m + 1] = (DHT_T)(a[i] ^ c[i] ^ lo);
            m += keep[i];
        }
    }
    return m;
}

/* The end of steps 1 and 2: the c stored pairs (consumed: freed) bucketed by target
 * into a bucket array of their own (w->bucket, freed with the work area), then the
 * distinct walk. Returns its count, or -1 when memory runs out. */
static int64_t DHT_S(bucket_pairs)(DHT_T *pairs, int64_t c, dht_work *w, DHT_T *start,
                                   DHT_T *last, DHT_T *fill) {
    DHT_T *bucket = malloc((size_t)(c > 0 ? c : 1) * sizeof(DHT_T));
    if (!bucket) {
        free(pairs);
        return -1;
    }
    DHT_S(dht_bucket)(pairs, c, w->k, start, bucket);
    free(pairs);
    w->bucket = bucket;
    return DHT_S(dht_distinct)(start, bucket, w->k, last, fill);
}

/* Steps 1 and 2 on the compacted (lo, hi) pairs of the grid, stored in one pass over the
 * pixels (in a block grown as needed: typically far fewer pairs than pixels), bucketed by
 * hi. Returns the number of undirected pairs (fill: higher neighbours per block; the
 * compacted buckets: the lower ones), or -1 when memory runs out. */
static int64_t DHT_S(grid_prepare)(const int64_t *restrict labels, int64_t num_images,
                                   int64_t height, int64_t width, dht_work *w) {
    int64_t k = w->k, n = num_images * height * width;
    DHT_T *start = DHT_S(start)(w), *last = start + k + 1, *fill = last + k;
    for (int64_t v = 0; v <= k; ++v) start[v] = 0;
    int64_t cap = n / 8 + 2 * width + 64, c = 0;
    DHT_T *pairs = malloc((size_t)(2 * cap) * sizeof(DHT_T));
    if (!pairs) return -1;
    /* Byte rows: hd of this row and the next, vd of the row above and this one, keep. */
    uint8_t *bytes = malloc((size_t)(5 * (width + 8)));
    if (!bytes) {
        free(pairs);
        return -1;
    }
    uint8_t *hd = bytes, *hd_next = hd + width + 8, *vd_up = hd_next + width + 8;
    uint8_t *vd = vd_up + width + 8, *keep = vd + width + 8;
    if (width > 0 && height > 0) /* (no pixels: no row pointers) */
        for (int64_t b = 0; b < num_images; ++b) {
            const int64_t *image = labels + b * height * width;
            diff_h(image, width, hd);
            for (int64_t y = 0; y < height; ++y) {
                if (c + 2 * width > cap) {
                    int64_t grown = 2 * cap > c + 2 * width ? 2 * cap : c + 2 * width;
                    DHT_T *more = realloc(pairs, (size_t)(2 * grown) * sizeof(DHT_T));
                    if (!more) {
                        free(bytes);
                        free(pairs);
                        return -1;
                    }
                    pairs = more;
                    cap = grown;
                }
                const int64_t *row = image + y * width, *down = row + width;
                int64_t below = y + 1 < height;
                if (below) {
                    diff_h(down, width, hd_next);
                    diff_v(row, down, width, vd);
                }
                /* A horizontal pair whose pixels both have the labels of the pixels
                 * above (vd_up 0, 0) repeats the pair above: left out (the same set,
                 * fewer repeats along a straight boundary); so is a vertical pair whose
                 * pixels continue the labels of the pair to its left. */
                if (y == 0)
                    memcpy(keep, hd, (size_t)(width - 1));
                else
                    for (int64_t x = 0; x + 1 < width; ++x)
                        keep[x] = hd[x] & (vd_up[x] | vd_up[x + 1]);
                DHT_T *pair = pairs + 2 * c;
                int64_t m = DHT_S(emit)(keep, width - 1, row, row + 1, pair);
                if (below) {
                    keep[0] = vd[0];
                    for (int64_t x = 1; x < width; ++x)
                        keep[x] = vd[x] & (hd[x - 1] | hd_next[x - 1]);
                    m += DHT_S(emit)(keep, width, row, down, pair + 2 * m);
                }
                for (int64_t i = 0; i < m; ++i) ++start[pair[2 * i + 1]];
                c += m;
                uint8_t *t = hd;
                hd = hd_next;
                hd_next = t;
                t = vd_up;
                vd_up = vd;
                vd = t;
            }
        }
    free(bytes);
    return DHT_S(bucket_pairs)(pairs, c, w, start, last, fill);
}

/* Step 3 for the grid: rows of (lower neighbours, loop, higher neighbours). The higher
 * neighbours are written by the walk over the compacted buckets (increasing hi, so each
 * row's come out sorted), the lower ones by a walk over the rows in increasing order
 * reading the higher neighbours back (so they come out sorted too). last becomes the
 * cursors of the lower neighbours, fill those of the higher ones. */
static void DHT_S(grid_write)(dht_work *w, int64_t *restrict out_src,
                              int64_t *restrict out_dst) {
    int64_t k = w->k, num_loops = w->num_loops;
    DHT_T *start = DHT_S(start)(w), *last = start + k + 1, *fill = last + k;
    const DHT_T *bucket = w->bucket;
    DHT_T total = 0;
    for (int64_t v = 0; v < k; ++v) {
        DHT_T loop = v < num_loops;
        last[v] = total; /* row v begins with its lower neighbours */
        total += (start[v + 1] - start[v]) + loop + fill[v];
        fill[v] = total - fill[v]; /* then its loop, then the higher ones */
        if (loop) out_dst[fill[v] - 1] = v;
    }
    for (DHT_T hi = 0; hi < (DHT_T)k; ++hi)
        for (DHT_T j = start[hi]; j < start[hi + 1]; ++j) out_dst[fill[bucket[j]]++] = hi;
    /* Row lo's lower neighbours are all written once the rows before it are read. */
    int64_t p = 0;
    for (int64_t lo = 0; lo < k; ++lo) {
        for (int64_t q = (int64_t)last[lo] + (lo < num_loops); q < (int64_t)fill[lo]; ++q)
            out_dst[last[out_dst[q]]++] = lo;
        for (; p < (int64_t)fill[lo]; ++p) out_src[p] = lo;
    }
}

/* Steps 1 and 2 on the pairs of an edge list (see dht_edges_prepare), stored in one pass
 * (at most m), compacted: a loop s == d left out with DHT_PAIRS_SKIP_LOOPS, and a pair
 * (s, d) when seen[d] == s (the last pair kept with target d had source s, so this one is
 * a repeat: a block's edges into one block come in runs when the list is sorted by
 * source). Returns the number of coalesced pairs, or -1 when memory runs out. */
#define DHT_STORE_PAIRS(U, W)                                                          \
    for (int64_t e = 0; e < m; ++e) {                                                   \
        int64_t u = (U), x = (W);                                                       \
        int64_t flip = (u ^ x) & -(undirected & (x < u)); /* (branch-free swap) */      \
        DHT_T s = (DHT_T)(u ^ flip), d = (DHT_T)(x ^ flip);                             \
        pairs[2 * c] = s;                                                               \
        pairs[2 * c + 1] = d;                                                           \
        DHT_T keep = (seen[d] != s) & !(skip & (s == d));                               \
        start[d] += keep;                                                               \
        c += keep;                                                                      \
        seen[d] = s;                                                                    \
    }
static int64_t DHT_S(edges_prepare)(const int64_t *restrict src, const int64_t *restrict dst,
                                    int64_t m, const int64_t *restrict map, int64_t flags,
                                    dht_work *w) {
    int64_t k = w->k;
    DHT_T *start = DHT_S(start)(w), *last = start + k + 1, *fill = last + k;
    DHT_T *seen = last; /* (until step 2) */
    DHT_T skip = (flags & DHT_PAIRS_SKIP_LOOPS) != 0;
    int64_t undirected = (flags & DHT_PAIRS_UNDIRECTED) != 0;
    for (int64_t v = 0; v < k; ++v) {
        start[v] = 0;
        seen[v] = -1;
    }
    start[k] = 0;
    DHT_T *pairs = malloc((size_t)(2 * (m > 0 ? m : 1)) * sizeof(DHT_T));
    if (!pairs) return -1;
    int64_t c = 0;
    if (map) {
        DHT_STORE_PAIRS(map[src[e]], map[dst[e]])
    } else {
        DHT_STORE_PAIRS(src[e], dst[e])
    }
    return DHT_S(bucket_pairs)(pairs, c, w, start, last, fill);
}
#undef DHT_STORE_PAIRS
#endif

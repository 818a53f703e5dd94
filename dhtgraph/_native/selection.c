/* Discrete steps of the token budget and of the selection (dhtgraph.selection's native path).
 *
 * Every kernel is integer work (orders, matchings, relabelling, components) or exact
 * copies and comparisons of floats; no float arithmetic is done here, so the results
 * equal the tensor implementation bit for bit. No globals: callers pass all scratch. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "pairs.h"

/* 1 when every x[i], i < n, is in [lo, hi) (the kernels' one-pass argument check). */
static int in_range(const int64_t *x, int64_t n, int64_t lo, int64_t hi) {
    uint64_t span = (uint64_t)hi - (uint64_t)lo, bad = 0;
    if (hi <= lo) return n <= 0;
    for (int64_t i = 0; i < n; ++i) bad |= (uint64_t)((uint64_t)x[i] - (uint64_t)lo >= span);
    return !bad;
}

/* ------------------------------------------------------------------ budget rounds */

typedef struct {
    uint64_t k1;  /* cost order */
    int64_t k2;   /* union size * 2^32 + tie */
    int64_t idx;  /* edge */
} edge_key;

static inline int key_less(const edge_key *x, const edge_key *y) {
    if (x->k1 != y->k1) return x->k1 < y->k1;
    if (x->k2 != y->k2) return x->k2 < y->k2;
    return x->idx < y->idx;
}

static inline void key_swap(edge_key *x, edge_key *y) {
    edge_key t = *x; *x = *y; *y = t;
}

static void insertion_sort(edge_key *a, int64_t n) {
    for (int64_t i = 1; i < n; ++i) {
        edge_key v = a[i];
        int64_t j = i;
        while (j > 0 && key_less(&v, &a[j - 1])) { a[j] = a[j - 1]; --j; }
        a[j] = v;
    }
}

static void sift_down(edge_key *a, int64_t start, int64_t n) {
    int64_t root = start;
    for (;;) {
        int64_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && key_less(&a[child], &a[child + 1])) ++child;
        if (!key_less(&a[root], &a[child])) return;
        key_swap(&a[root], &a[child]);
        root = child;
    }
}

static void heap_sort(edge_key *a, int64_t n) {
    for (int64_t i = n / 2 - 1; i >= 0; --i) sift_down(a, i, n);
    for (int64_t i = n - 1; i > 0; --i) {
        key_swap(&a[0], &a[i]);
        sift_down(a, 0, i);
    }
}

/* Hoare-style partition around the median of three; the keys are distinct (idx).
 * Returns p with a[0..p) < pivot-ish <= a[p..n). Both parts non-empty for n >= 3. */
static int64_t partition_keys(edge_key *a, int64_t n) {
    int64_t mid = (n - 1) / 2;
    if (key_less(&a[mid], &a[0])) key_swap(&a[mid], &a[0]);
    if (key_less(&a[n - 1], &a[0])) key_swap(&a[n - 1], &a[0]);
    if (key_less(&a[n - 1], &a[mid])) key_swap(&a[n - 1], &a[mid]);
    edge_key pivot = a[mid];
    int64_t i = -1, j = n;
    for (;;) {
        do { ++i; } while (key_less(&a[i], &pivot));
        do { --j; } while (key_less(&pivot, &a[j]));
        if (i >= j) return j + 1;
        key_swap(&a[i], &a[j]);
    }
}

static void intro_sort(edge_key *a, int64_t n, int depth) {
    while (n > 16) {
        if (depth-- <= 0) { heap_sort(a, n); return; }
        int64_t p = partition_keys(a, n);
        if (p < n - p) { intro_sort(a, p, depth); a += p; n -= p; }
        else { intro_sort(a + p, n - p, depth); n = p; }
    }
    insertion_sort(a, n);
}

static int depth_limit(int64_t n) {
    int d = 0;
    while (n > 1) { n >>= 1; ++d; }
    return 2 * d + 2;
}

/* The c smallest keys of a[0..n), sorted, in a[0..c). */
static void partial_sort(edge_key *a, int64_t n, int64_t c) {
    if (c <= 0) return;
    if (c < n) {
        int depth = depth_limit(n);
        edge_key *base = a;
        int64_t len = n, want = c; /* find a split with exactly the first `want` in front */
        while (len > 16) {
            if (depth-- <= 0) { heap_sort(base, len); len = 0; break; }
            int64_t p = partition_keys(base, len);
            if (p == want) { len = 0; break; }
            if (p > want) { len = p; }
            else { base += p; len -= p; want -= p; }
        }
        if (len > 0) insertion_sort(base, len);
    }
    intro_sort(a, c, depth_limit(c));
}

static inline uint64_t float32_order(const float *cost, int64_t e, int packed) {
    uint32_t bits;
    memcpy(&bits, cost + e, 4);
    if (packed) return bits & 0x7FFFFFFFu; /* the tensor path's packed key */
    float v = cost[e];
    if (isnan(v)) return 0xFFFFFFFFu;        /* NaN last, all NaNs equal */
    if (v == 0.0f) return 0x80000000u;      /* -0 == +0 */
    return (bits & 0x80000000u) ? (uint64_t)(~bits) : (uint64_t)(bits | 0x80000000u);
}

static inline uint64_t float64_order(const double *cost, int64_t e) {
    uint64_t bits;
    memcpy(&bits, cost + e, 8);
    double v = cost[e];
    if (isnan(v)) return UINT64_MAX;
    if (v == 0.0) return 0x8000000000000000ull;
    return (bits & 0x8000000000000000ull) ? ~bits : (bits | 0x8000000000000000ull);
}

static inline uint64_t tie_hash(uint64_t a, uint64_t b) {
    uint64_t x = ((a * 0x9E3779B1ull) & 0xFFFFFFFFull) ^ b;
    x = ((x ^ (x >> 16)) * 0x045D9F3Bull) & 0xFFFFFFFFull;
    x = ((x ^ (x >> 16)) * 0x045D9F3Bull) & 0xFFFFFFFFull;
    return x ^ (x >> 16);
}

/* One round's choice of merges (merge_to_budget's _agglomerate, module docstring).
 *
 * edges (2, e) (unique, a < b, sorted, so each image's edges are one range); cost (e)
 * float32 (is_double = 0) or float64; usize (e) the union sizes as int64 (torch's
 * .long() of the float sizes, as the tensor path's key); tie (e) the random tie keys, or NULL for
 * the hash of the positions within the image; unit_batch (n), units (B), excess (B).
 * packed: order the float32 costs by their magnitude bits (the tensor path for batches).
 * Scratch: keys (e), best (n), matched (n bytes), chosen (e bytes).
 * Output: pair (2 * e): the merged pairs (a's then b's at offset e... compacted to
 * pair[0..m) and pair[m..2m)), step (n), target (m). Returns m, the number of merges, or
 * -1 (an edge end outside [0, n)), -2 (unit_batch outside [0, num_images)). */
int64_t dht_budget_round(const int64_t *edges, int64_t e, const void *cost, const int64_t *usize,
                         int64_t is_double, int64_t packed, const int64_t *tie,
                         const int64_t *unit_batch, int64_t n, const int64_t *units,
                         const int64_t *excess, int64_t num_images, int64_t passes,
                         edge_key *keys, int64_t *best, uint8_t *matched, uint8_t *chosen,
                         int64_t *start, int64_t *pair, int64_t *step, int64_t *target) {
    if (!in_range(edges, 2 * e, 0, n)) return -1;
    if (!in_range(unit_batch, n, 0, num_images)) return -2;
    const int64_t *a = edges, *b = e ? edges + e : edges;
    int64_t acc = 0;
    for (int64_t i = 0; i < num_images; ++i) { start[i] = acc; acc += units[i]; }
    /* keys, per image range, candidates compacted in front */
    int64_t num_cand = 0;
    int64_t lo = 0;
    while (lo < e) {
        int64_t img = unit_batch[a[lo]];
        int64_t hi = lo + 1;
        while (hi < e && unit_batch[a[hi]] == img) ++hi;
        int64_t s = start[img];
        for (int64_t j = lo; j < hi; ++j) {
            edge_key *k = &keys[j];
            if (is_double) k->k1 = float64_order((const double *)cost, j);
            else k->k1 = float32_order((const float *)cost, j, (int)packed);
            uint64_t t = tie ? (uint64_t)tie[j] : tie_hash((uint64_t)(a[j] - s), (uint64_t)(b[j] - s));
            k->k2 = (int64_t)((uint64_t)usize[j] * 4294967296ull + t);
            k->idx = j;
        }
        int64_t c = excess[img];
        if (c > hi - lo) c = hi - lo;
        if (c > 0) {
            partial_sort(keys + lo, hi - lo, c);
            if (num_cand != lo) memmove(keys + num_cand, keys + lo, (size_t)c * sizeof(edge_key));
            num_cand += c;
        }
        lo = hi;
    }
    /* matching passes on the candidates (rank = position) */
    for (int64_t r = 0; r < num_cand; ++r) {
        int64_t j = keys[r].idx;
        matched[a[j]] = 0;
        matched[b[j]] = 0;
        chosen[r] = 0;
    }
    for (int64_t p = 0; p < passes; ++p) {
        for (int64_t r = 0; r < num_cand; ++r) {
            int64_t j = keys[r].idx;
            best[a[j]] = num_cand;
            best[b[j]] = num_cand;
        }
        for (int64_t r = 0; r < num_cand; ++r) {
            int64_t j = keys[r].idx, u = a[j], v = b[j];
            int64_t key = (p && (matched[u] || matched[v])) ? num_cand : r;
            if (key < best[u]) best[u] = key;
            if (key < best[v]) best[v] = key;
        }
        for (int64_t r = 0; r < num_cand; ++r) {
            int64_t j = keys[r].idx;
            if (best[a[j]] == r && best[b[j]] == r) chosen[r] = 1;
        }
        if (p + 1 < passes) {
            for (int64_t r = 0; r < num_cand; ++r) {
                if (chosen[r]) {
                    int64_t j = keys[r].idx;
                    matched[a[j]] = 1;
                    matched[b[j]] = 1;
                }
            }
        }
    }
    int64_t m = 0;
    for (int64_t r = 0; r < num_cand; ++r) {
        if (chosen[r]) {
            int64_t j = keys[r].idx;
            pair[m] = a[j];
            best[m] = b[j]; /* b ends, staged (best is free now) */
            ++m;
        }
    }
    if (m) memcpy(pair + m, best, (size_t)m * sizeof(int64_t));
    /* new indices: the smaller unit represents the union */
    for (int64_t u = 0; u < n; ++u) matched[u] = 1;
    for (int64_t i = 0; i < m; ++i) matched[pair[m + i]] = 0;
    int64_t next = 0;
    for (int64_t u = 0; u < n; ++u) {
        next += matched[u];
        step[u] = next - 1;
    }
    for (int64_t i = 0; i < m; ++i) {
        target[i] = step[pair[i]];
        step[pair[m + i]] = target[i];
    }
    return m;
}

/* Compact the units after a round: rows of state (n rows of row_bytes) that are not the b
 * end of a pair go to step[u], then the merged rows to target; unit_batch likewise; the
 * merges per image leave excess and units (num_images); labels (k) follow step.
 * Returns 0, or -1 (pair, step or target out of range), -2 (unit_batch outside
 * [0, num_images)), -3 (labels outside [0, n)); nothing is written then. */
int64_t dht_budget_compact(const char *state, int64_t n, int64_t row_bytes, const int64_t *pair,
                           int64_t m, const int64_t *step, const int64_t *target,
                           const char *merged, char *new_state, const int64_t *unit_batch,
                           int64_t *new_batch, int64_t *excess, int64_t *units,
                           int64_t num_images, int64_t *labels, int64_t k, uint8_t *is_b) {
    if (m < 0 || m > n || !in_range(pair, 2 * m, 0, n) || !in_range(step, n, 0, n - m)
        || !in_range(target, m, 0, n - m)) return -1;
    if (!in_range(unit_batch, n, 0, num_images)) return -2;
    if (!in_range(labels, k, 0, n)) return -3;
    if (n == 0) return 0;
    memset(is_b, 0, (size_t)n);
    for (int64_t i = 0; i < m; ++i) is_b[pair[m + i]] = 1;
    for (int64_t u = 0; u < n; ++u) {
        if (is_b[u]) continue;
        memcpy(new_state + step[u] * row_bytes, state + u * row_bytes, (size_t)row_bytes);
        new_batch[step[u]] = unit_batch[u];
    }
    for (int64_t i = 0; i < m; ++i) {
        memcpy(new_state + target[i] * row_bytes, merged + i * row_bytes, (size_t)row_bytes);
        int64_t img = unit_batch[pair[i]];
        excess[img] -= 1;
        units[img] -= 1;
    }
    for (int64_t t = 0; t < k; ++t) labels[t] = step[labels[t]];
    return 0;
}

/* dht_budget_compact, then the contracted unit graph: the edges (2, e) relabelled by step
 * and coalesced as undirected pairs a < b, loops left out, into out_edges (room for 2e;
 * see dht_pairs_coalesce: scratch 5 (n - m) + 1 + e). Returns the new edge count, or
 * dht_budget_compact's error code, or -4 (an edge end outside [0, n)). */
int64_t dht_budget_contract(const char *state, int64_t n, int64_t row_bytes,
                            const int64_t *pair, int64_t m, const int64_t *step,
                            const int64_t *target, const char *merged, char *new_state,
                            const int64_t *unit_batch, int64_t *new_batch, int64_t *excess,
                            int64_t *units, int64_t num_images, int64_t *labels, int64_t k,
                            uint8_t *is_b, const int64_t *edges, int64_t e, int64_t *scratch,
                            int64_t *out_edges) {
    if (!in_range(edges, 2 * e, 0, n)) return -4;
    int64_t status = dht_budget_compact(state, n, row_bytes, pair, m, step, target, merged,
                                        new_state, unit_batch, new_batch, excess, units,
                                        num_images, labels, k, is_b);
    if (status < 0) return status;
    int64_t nodes = n - m > 0 ? n - m : 1;
    if (e == 0) return 0;
    /* (step is in [0, n - m): checked by dht_budget_compact) */
    return dht_pairs_coalesce(edges, edges + e, e, step, nodes,
                              DHT_PAIRS_SKIP_LOOPS | DHT_PAIRS_UNDIRECTED, scratch, out_edges);
}

/* The representative of every output token: its largest input token (ties: the first).
 * labels (k) in [0, n), size (k) int64; kept (k bytes) set; scratch largest, first (n).
 * Returns 0, or -1 (labels out of range; nothing written). */
int64_t dht_budget_kept(const int64_t *labels, const int64_t *size, int64_t k, int64_t n,
                        int64_t *largest, int64_t *first, uint8_t *kept) {
    if (!in_range(labels, k, 0, n)) return -1;
    for (int64_t t = 0; t < n; ++t) { largest[t] = INT64_MIN; first[t] = k; }
    for (int64_t t = 0; t < k; ++t)
        if (size[t] > largest[labels[t]]) largest[labels[t]] = size[t];
    for (int64_t t = 0; t < k; ++t) {
        kept[t] = 0;
        int64_t l = labels[t];
        if (size[t] == largest[l] && t < first[l]) first[l] = t;
    }
    for (int64_t t = 0; t < n; ++t) if (first[t] < k) kept[first[t]] = 1;
    return 0;
}

/* ------------------------------------------------------------------ selection */

/* Connected pieces of the blocks (block_of, b images of h x w, row-major) on the
 * 4-neighbour grid, numbered by their first pixel (labels, N). One raster scan: a pixel
 * points to its left neighbour of the same block, else to the one above; when it has
 * both, the two trees are united (common.h's Rem's union-find) unless the upper-left
 * pixel is of the same block too (then they are joined already). Every pointer goes to a
 * smaller pixel, so a second scan in pixel order numbers the pieces: a root takes the next
 * label, any other pixel the label of the pixel it points to (the same piece, labelled
 * before it). The pointers live in labels itself, overwritten in that order. Returns k. */
int64_t dht_grid_pieces(const int64_t *block_of, int64_t b, int64_t h, int64_t w,
                        int64_t *labels) {
    int64_t n = b * h * w;
    int64_t *parent = labels;
    for (int64_t i = 0; i < b; ++i) {
        int64_t base = i * h * w;
        for (int64_t r = 0; r < h; ++r) {
            int64_t row = base + r * w;
            for (int64_t c = 0; c < w; ++c) {
                int64_t v = row + c;
                int64_t x = block_of[v];
                int left = c && block_of[v - 1] == x;
                int up = r && block_of[v - w] == x;
                if (left) {
                    parent[v] = v - 1;
                    if (up && block_of[v - w - 1] != x) dht_unite(parent, v - w, v - 1);
                } else {
                    parent[v] = up ? v - w : v;
                }
            }
        }
    }
    int64_t k = 0;
    for (int64_t v = 0; v < n; ++v) {
        int64_t p = parent[v];
        labels[v] = (p == v) ? k++ : labels[p];
    }
    return k;
}

/* Canonical labels of key (s values in [0, num_slots)): groups numbered by first
 * occurrence; first (s) receives each group's first position. Scratch rank (num_slots).
 * Returns the number of groups, or -1 (key out of range; the outputs are then partly
 * written). */
int64_t dht_first_occurrence_groups(const int64_t *key, int64_t s, int64_t num_slots,
                                    int64_t *rank, int64_t *labels, int64_t *first) {
    for (int64_t i = 0; i < num_slots; ++i) rank[i] = -1;
    int64_t k = 0;
    for (int64_t p = 0; p < s; ++p) {
        int64_t x = key[p];
        if ((uint64_t)x >= (uint64_t)num_slots) return -1; /* (outputs are the caller's scratch) */
        if (rank[x] < 0) { rank[x] = k; first[k] = p; ++k; }
        labels[p] = rank[x];
    }
    return k;
}

/* ------------------------------------------------------------------ grid regions */

/* Integer statistics of the blocks (labels, b images of h x w, row-major) from their runs
 * along the rows: box (k, 4) [ymin, xmin, ymax, xmax] (starting at max(h, w) and -1 as the
 * tensor path's include_self reductions), sums (k, 2) [sum of rows, sum of columns], and
 * image (k): the smallest image of each block (starting at b). Returns 0, or -1 (labels
 * outside [0, k); the outputs are then partly written). */
int64_t dht_grid_region_stats(const int64_t *labels, int64_t b, int64_t h, int64_t w, int64_t k,
                              int64_t *box, int64_t *sums, int64_t *image) {
    int64_t big = h > w ? h : w;
    for (int64_t t = 0; t < k; ++t) {
        box[4 * t] = big; box[4 * t + 1] = big; box[4 * t + 2] = -1; box[4 * t + 3] = -1;
        sums[2 * t] = 0; sums[2 * t + 1] = 0;
        image[t] = b;
    }
    for (int64_t line = 0; line < b * h; ++line) {
        const int64_t *row = labels + line * w;
        int64_t y = line % h, img = line / h;
        int64_t x0 = 0;
        while (x0 < w) {
            int64_t l = row[x0];
            int64_t x1 = x0;
            while (x1 + 1 < w && row[x1 + 1] == l) ++x1;
            if ((uint64_t)l >= (uint64_t)k) return -1; /* (the outputs are fresh) */
            int64_t len = x1 - x0 + 1;
            int64_t *bx = box + 4 * l;
            if (y < bx[0]) bx[0] = y;
            if (x0 < bx[1]) bx[1] = x0;
            if (y > bx[2]) bx[2] = y;
            if (x1 > bx[3]) bx[3] = x1;
            sums[2 * l] += y * len;
            sums[2 * l + 1] += (x0 + x1) * len / 2;
            if (img < image[l]) image[l] = img;
            x0 = x1 + 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ IC selector */

/* Whether every slot moves at the first update: ic_new[labels[i]] >= slot_ic[i * stride]
 * for all i < s (stride 0: one starting IC for every slot); -1 when a label read (those
 * up to the first slot that stays) is outside [0, num_ic). */
int64_t dht_selector_all_move(const int64_t *labels, int64_t s, const float *ic_new,
                              int64_t num_ic, const float *slot_ic, int64_t stride) {
    /* checked as read (nothing is written; the first slot that stays ends the scan) */
    for (int64_t i = 0; i < s; ++i) {
        int64_t c = labels[i];
        if ((uint64_t)c >= (uint64_t)num_ic) return -1;
        if (!(ic_new[c] >= slot_ic[i * stride])) return 0;
    }
    return 1;
}

/* One update of the stored blocks (InformationSelector.update): the block c of every
 * slot (labels[current[i]], or labels[i] when current is NULL) moves the slot when its IC
 * is >= the slot's (and its graph is active, when active is given): the slot then takes
 * c's IC and the statistics row c + offset (else keeps its own; rows NULL: the slot
 * index). improved (num_images bytes) marks the graphs where a slot moved. out_c may be
 * NULL (current NULL: c is labels itself). In place: out_ic, out_row and out_c may be
 * slot_ic (stride 1), rows and current (entry i is read before entry i is written).
 * labels has num_labels entries, ic_new num_ic. Returns 0, or (nothing written) -1: current
 * outside [0, num_labels); -2: labels outside [0, num_ic); -3: slot_batch outside
 * [0, num_images). */
int64_t dht_selector_update(const int64_t *labels, int64_t num_labels, const int64_t *current,
                            int64_t s, const float *ic_new, int64_t num_ic, const float *slot_ic,
                            int64_t stride, const int64_t *rows, int64_t offset,
                            const uint8_t *active, const int64_t *slot_batch, int64_t num_images,
                            float *out_ic, int64_t *out_row, int64_t *out_c, uint8_t *improved) {
    /* Every label (not only those read): branch-free passes the compiler vectorises. */
    if (current && !in_range(current, s, 0, num_labels)) return -1;
    if (!current && s > num_labels) return -1;
    if (!in_range(labels, num_labels, 0, num_ic)) return -2;
    if (!in_range(slot_batch, s, 0, num_images)) return -3;
    if (num_images > 0) memset(improved, 0, (size_t)num_images);
    for (int64_t i = 0; i < s; ++i) {
        int64_t c = current ? labels[current[i]] : labels[i];
        if (out_c) out_c[i] = c;
        float ic = ic_new[c], own = slot_ic[i * stride];
        int move = ic >= own;
        if (active && !active[slot_batch[i]]) move = 0;
        if (move) {
            out_ic[i] = ic;
            out_row[i] = c + offset;
            improved[slot_batch[i]] = 1;
        } else {
            out_ic[i] = own;
            out_row[i] = rows ? rows[i] : i;
        }
    }
    return 0;
}

/* The pieces of InformationSelector.finish without its node-sized gather and scatter: the
 * block of pixel v is rows[node_slot[v]] (rows NULL: node_slot[v]; node_slot NULL:
 * rows[v], or v itself). As dht_grid_pieces (labels, N); besides, slot (k) receives the
 * slot (node_slot[v], or v) of the last pixel of every piece (the tensor path's scatter).
 * Scratch keys (2w): the blocks of the previous and the current row. rows has num_rows
 * entries. Returns k, or -1 (a slot outside [0, num_rows); the outputs are then partly
 * written). */
int64_t dht_grid_pieces_of_slots(const int64_t *rows, int64_t num_rows, const int64_t *node_slot,
                                 int64_t b, int64_t h, int64_t w, int64_t *labels, int64_t *slot,
                                 int64_t *keys) {
    int64_t n = b * h * w;
    if (rows && !node_slot && n > num_rows) return -1;
    int64_t *parent = labels;
    for (int64_t i = 0; i < b; ++i) {
        int64_t base = i * h * w;
        int64_t *above = keys, *here = keys + w;
        for (int64_t r = 0; r < h; ++r) {
            int64_t row = base + r * w;
            for (int64_t c = 0; c < w; ++c) {
                int64_t v = row + c;
                int64_t s = node_slot ? node_slot[v] : v;
                if (rows && (uint64_t)s >= (uint64_t)num_rows) return -1; /* (fresh outputs) */
                int64_t x = rows ? rows[s] : s;
                here[c] = x;
                int left = c && here[c - 1] == x;
                int up = r && above[c] == x;
                if (left) {
                    parent[v] = v - 1;
                    if (up && above[c - 1] != x) dht_unite(parent, v - w, v - 1);
                } else {
                    parent[v] = up ? v - w : v;
                }
            }
            int64_t *t = above; above = here; here = t;
        }
    }
    int64_t k = 0;
    for (int64_t v = 0; v < n; ++v) {
        int64_t p = parent[v];
        int64_t l = (p == v) ? k++ : labels[p];
        labels[v] = l;
        slot[l] = node_slot ? node_slot[v] : v;
    }
    return k;
}

/* The pixel-grid contraction level and the edge compactness' integer part
 * (dhtgraph.hierarchy.grid and dhtgraph.hierarchy.affinity's native paths).
 *
 * Integer work and exact float comparisons only: every potential is computed and
 * quantised by torch; here the argmax over a pixel's (up to) four neighbours with both
 * tie rules, the blocks' sizes, boxes and images, the constant-channel test of the
 * blocks, and the union masses and perimeters of an edge list. Each is one pass and
 * gives bit for bit the tensors of the tensor implementation. No globals: re-entrant. */
#include <stdint.h>

/* ------------------------------------------------------------------ tie hash */

/* dhtgraph.hierarchy.contraction._mix32_ in uint32 arithmetic (the tensor version
 * computes the same values mod 2^32 in int64). */
static uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* tie_hash(a, b) of a < b (TIE_HASH_BITS = 15) is mix32(mix32(a) + b) >> 17. */

/* ------------------------------------------------------------- grid argmax */

/* Row r's edge keys: kh[c] of the edge (r, c)–(r, c+1) (c < W-1), and when r < H-1,
 * kv[c] of (r, c)–(r+1, c). Hashed rule: q·2^15 + tie_hash of the pixels' local indices,
 * the hash dropped where every channel of the two pixels is equal (a plateau); the
 * reference rule: q. `eq` is scratch of W int32. Loops over one row and one channel at
 * a time, so a channel-major image (sn = 1) compares contiguous runs. */
#define GRID_ROW_KEYS(T)                                                                \
    static void grid_row_keys_##T(const int32_t *qh, const int32_t *qv, int64_t r,      \
                                  int64_t h, int64_t w, int hashed, const T *x,         \
                                  int64_t sn, int64_t sd, int64_t d, int64_t base,      \
                                  int32_t *kh, int32_t *kv, int32_t *eq) {              \
        const int below = r + 1 < h;                                                    \
        const int32_t *qhr = qh + r * (w - 1), *qvr = qv + r * w;                       \
        if (!hashed) {                                                                  \
            for (int64_t c = 0; c + 1 < w; ++c) kh[c] = qhr[c];                         \
            if (below) for (int64_t c = 0; c < w; ++c) kv[c] = qvr[c];                  \
            return;                                                                     \
        }                                                                               \
        const uint32_t first = (uint32_t)(r * w);                                       \
        /* horizontal: equal channels, then the keys */                                 \
        for (int64_t c = 0; c < w; ++c) eq[c] = 1;                                      \
        for (int64_t j = 0; j < d; ++j) {                                               \
            const T *a = x + (base + r * w) * sn + j * sd;                              \
            if (sn == 1)                                                                \
                for (int64_t c = 0; c + 1 < w; ++c) eq[c] &= a[c] == a[c + 1];          \
            else                                                                        \
                for (int64_t c = 0; c + 1 < w; ++c) eq[c] &= a[c * sn] == a[(c + 1) * sn]; \
        }                                                                               \
        for (int64_t c = 0; c + 1 < w; ++c) {                                           \
            const uint32_t l = first + (uint32_t)c;                                     \
            const int32_t hash = (int32_t)(mix32(mix32(l) + l + 1u) >> 17);             \
            kh[c] = (qhr[c] << 15) | (hash & (eq[c] - 1));                              \
        }                                                                               \
        if (!below) return;                                                             \
        for (int64_t c = 0; c < w; ++c) eq[c] = 1;                                      \
        for (int64_t j = 0; j < d; ++j) {                                               \
            const T *a = x + (base + r * w) * sn + j * sd, *b = a + w * sn;             \
            if (sn == 1)                                                                \
                for (int64_t c = 0; c < w; ++c) eq[c] &= a[c] == b[c];                  \
            else                                                                        \
                for (int64_t c = 0; c < w; ++c) eq[c] &= a[c * sn] == b[c * sn];        \
        }                                                                               \
        for (int64_t c = 0; c < w; ++c) {                                               \
            const uint32_t l = first + (uint32_t)c;                                     \
            const int32_t hash = (int32_t)(mix32(mix32(l) + l + (uint32_t)w) >> 17);    \
            kv[c] = (qvr[c] << 15) | (hash & (eq[c] - 1));                              \
        }                                                                               \
    }

/* Every pixel's best neighbour: candidates visited up, left, right, down (increasing
 * index), a later one winning ties (>=). qh (B, H, W-1) and qv (B, H-1, W) are the
 * quantised potentials of the horizontal and vertical edges; x the features (row g of
 * pixel g at x + g*sn, channel j at + j*sd), read by the hashed rule only. Writes the
 * direction code (0 up, 1 left, 2 right, 3 down) and the chosen pixel (global index);
 * `scratch` holds 4·W int32. Branch-free maximum: each candidate's key is extended by
 * its direction (key·4 + dir), so the largest extended key is the last of the largest
 * keys in visiting order. */
#define GRID_ARGMAX(T)                                                                  \
    GRID_ROW_KEYS(T)                                                                    \
    void dht_grid_argmax_##T(const int32_t *qh, const int32_t *qv, int64_t nb,          \
                             int64_t h, int64_t w, int64_t hashed, const T *x,          \
                             int64_t sn, int64_t sd, int64_t d, int32_t *scratch,       \
                             int8_t *code, int64_t *choice) {                           \
        const int64_t step[4] = {-w, -1, 1, w};                                         \
        int32_t *kh = scratch, *up = scratch + w, *down = scratch + 2 * w;              \
        int32_t *eq = scratch + 3 * w;                                                  \
        for (int64_t b = 0; b < nb; ++b) {                                              \
            const int64_t base = b * h * w;                                             \
            const int32_t *qhb = qh + b * h * (w - 1), *qvb = qv + b * (h - 1) * w;     \
            for (int64_t r = 0; r < h; ++r) {                                           \
                grid_row_keys_##T(qhb, qvb, r, h, w, (int)hashed, x, sn, sd, d, base,   \
                                  kh, down, eq);                                        \
                int8_t *code_r = code + base + r * w;                                   \
                int64_t *choice_r = choice + base + r * w;                              \
                for (int64_t c = 0; c < w; ++c) {                                       \
                    int64_t best = r > 0 ? (int64_t)up[c] * 4 : -1, key;                \
                    if (c > 0) {                                                        \
                        key = (int64_t)kh[c - 1] * 4 + 1;                               \
                        best = key > best ? key : best;                                 \
                    }                                                                   \
                    if (c + 1 < w) {                                                    \
                        key = (int64_t)kh[c] * 4 + 2;                                   \
                        best = key > best ? key : best;                                 \
                    }                                                                   \
                    if (r + 1 < h) {                                                    \
                        key = (int64_t)down[c] * 4 + 3;                                 \
                        best = key > best ? key : best;                                 \
                    }                                                                   \
                    const int dir = (int)(best & 3);                                    \
                    code_r[c] = (int8_t)dir;                                            \
                    choice_r[c] = base + r * w + c + step[dir];                         \
                }                                                                       \
                int32_t *t = up; up = down; down = t; /* this row's down: next's up */  \
            }                                                                           \
        }                                                                               \
    }

GRID_ARGMAX(float)
GRID_ARGMAX(double)

/* The potential of every pixel's chosen edge (a copy: out[g] is qh's or qv's value of
 * the edge in direction code[g]) from the potentials horizontal (B, H, W-1) and
 * vertical (B, H-1, W). */
#define GRID_CHOSEN(T)                                                                  \
    void dht_grid_chosen_##T(const T *horizontal, const T *vertical, const int8_t *code, \
                             int64_t nb, int64_t h, int64_t w, T *out) {                \
        int64_t g = 0;                                                                  \
        for (int64_t b = 0; b < nb; ++b) {                                              \
            const T *hb = horizontal + b * h * (w - 1), *vb = vertical + b * (h - 1) * w; \
            for (int64_t r = 0; r < h; ++r) {                                           \
                for (int64_t c = 0; c < w; ++c, ++g) {                                  \
                    /* the four candidates (borders: predictable tests), then an       \
                     * indexed pick: no branch on the direction */                      \
                    T cand[4] = {0, 0, 0, 0};                                           \
                    if (r > 0) cand[0] = vb[(r - 1) * w + c];                           \
                    if (c > 0) cand[1] = hb[r * (w - 1) + c - 1];                       \
                    if (c + 1 < w) cand[2] = hb[r * (w - 1) + c];                       \
                    if (r + 1 < h) cand[3] = vb[r * w + c];                             \
                    out[g] = cand[code[g] & 3];                                         \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }

GRID_CHOSEN(float)
GRID_CHOSEN(double)

/* ------------------------------------------------------------ grid blocks */

/* Sizes, inclusive boxes (ymin, xmin, ymax, xmax) and images of the k blocks of a
 * labelling of B row-major H x W images (labels (B*H*W,) in [0, k)). */
void dht_grid_blocks(const int64_t *labels, int64_t nb, int64_t h, int64_t w, int64_t k,
                     int64_t *counts, int64_t *bbox, int64_t *batch) {
    for (int64_t i = 0; i < k; ++i) {
        counts[i] = 0;
        bbox[4 * i] = bbox[4 * i + 1] = INT64_MAX;
        bbox[4 * i + 2] = bbox[4 * i + 3] = INT64_MIN;
        batch[i] = 0;
    }
    int64_t g = 0;
    for (int64_t b = 0; b < nb; ++b) {
        for (int64_t r = 0; r < h; ++r) {
            for (int64_t c = 0; c < w; ++c, ++g) {
                const int64_t l = labels[g];
                int64_t *box = bbox + 4 * l;
                counts[l] += 1;
                batch[l] = b;
                /* branch-free (the labels of neighbouring pixels vary unpredictably) */
                box[0] = r < box[0] ? r : box[0];
                box[1] = c < box[1] ? c : box[1];
                box[2] = r > box[2] ? r : box[2];
                box[3] = c > box[3] ? c : box[3];
            }
        }
    }
}

/* ------------------------------------------------------- constant channels */

/* constant (k, d) uint8: 1 where no pixel of the block differs in the channel from the
 * pixel it chose (every block is connected by its choice edges, so: where the block is
 * constant in that channel). NaN differs from everything, -0.0 equals 0.0. */
#define GRID_CONSTANT(T)                                                                \
    void dht_grid_constant_##T(const T *x, int64_t sn, int64_t sd, int64_t d,           \
                               const int64_t *choice, const int64_t *labels, int64_t n, \
                               int64_t k, uint8_t *constant) {                          \
        for (int64_t i = 0; i < k * d; ++i) constant[i] = 1;                            \
        for (int64_t p = 0; p < n; ++p) {                                               \
            const int64_t q = choice[p];                                                \
            if (q == p) continue; /* (never on a grid: every pixel has a neighbour) */  \
            const T *a = x + p * sn, *b = x + q * sn;                                   \
            uint8_t *out = constant + labels[p] * d;                                    \
            for (int64_t j = 0; j < d; ++j) /* branch-free: out[j] &= equal */          \
                out[j] &= (uint8_t)(a[j * sd] == b[j * sd]);                            \
        }                                                                               \
    }

GRID_CONSTANT(float)
GRID_CONSTANT(double)

/* ------------------------------------------------------------ compactness */

/* Union mass and perimeter 2 + Δy + Δx (float32, the tensor version's roundings) of
 * the edges (src[e], dst[e]) of the nb blocks with sizes `size` and boxes `bbox` (nb, 4)
 * int64; a loop (v, v) takes the block's own size and box. Returns 0, or 1 + the first
 * edge with an end outside [0, nb) (nothing read out of bounds; outputs then partial). */
int64_t dht_union_mass_perimeter(const int64_t *size, const int64_t *bbox, int64_t nb,
                                 const int64_t *src, const int64_t *dst, int64_t m,
                                 float *mass, float *perimeter) {
    for (int64_t e = 0; e < m; ++e) {
        const int64_t u = src[e], v = dst[e];
        if (u < 0 || u >= nb || v < 0 || v >= nb) return e + 1;
        const int64_t *a = bbox + 4 * u, *b = bbox + 4 * v;
        const float mu = (float)size[u];
        mass[e] = u == v ? mu : mu + (float)size[v];
        const int64_t y0 = a[0] < b[0] ? a[0] : b[0], x0 = a[1] < b[1] ? a[1] : b[1];
        const int64_t y1 = a[2] > b[2] ? a[2] : b[2], x1 = a[3] > b[3] ? a[3] : b[3];
        const float p = 2.0f + (float)(y1 - y0); /* (2 + Δy) + Δx, as the tensor sums */
        perimeter[e] = p + (float)(x1 - x0);
    }
    return 0;
}

/* ------------------------------------------------------ edge differences */

/* out (m, d) row-major: x[dst[e]] - x[src[e]] per channel (one IEEE subtraction each,
 * as the tensor version's gathers and sub); x has nb rows (row i at x + i*sn, channel j
 * at + j*sd). Returns 0, or 1 + the first edge with an end outside [0, nb). */
#define EDGE_DIFFERENCE(T)                                                              \
    int64_t dht_edge_difference_##T(const T *x, int64_t sn, int64_t sd, int64_t d,      \
                                    int64_t nb, const int64_t *src, const int64_t *dst, \
                                    int64_t m, T *out) {                                \
        for (int64_t e = 0; e < m; ++e) {                                               \
            const int64_t u = src[e], v = dst[e];                                       \
            if (u < 0 || u >= nb || v < 0 || v >= nb) return e + 1;                     \
            const T *a = x + v * sn, *b = x + u * sn;                                   \
            T *o = out + e * d;                                                         \
            for (int64_t j = 0; j < d; ++j) o[j] = a[j * sd] - b[j * sd];               \
        }                                                                               \
        return 0;                                                                       \
    }

EDGE_DIFFERENCE(float)
EDGE_DIFFERENCE(double)

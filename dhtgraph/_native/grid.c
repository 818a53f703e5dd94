/* The pixel-grid contraction level and the edge compactness' integer part
 * (dhtgraph.hierarchy.grid and dhtgraph.hierarchy.affinity's native paths).
 *
 * Integer work and exact float comparisons only: every potential is computed and
 * quantised by torch; here the argmax over a pixel's (up to) four neighbours with both
 * tie rules, the blocks' sizes, boxes and images, the constant-channel test of the
 * blocks, and the union masses and perimeters of an edge list. Each is one pass and
 * gives bit for bit the tensors of the tensor implementation. No globals: re-entrant. */
#include <stdint.h>
#include <stdlib.h>

#include "common.h" /* dht_mix32 (tie_hash), dht_quantize_f32/f64 */

/* tie_hash(a, b) of a < b (TIE_HASH_BITS = 15) is mix32(mix32(a) + b) >> 17: in the row
 * loops below with dht_mix32 on the pixels' uint32 local indices. */
#define TIE_SHIFT (32 - DHT_TIE_HASH_BITS)

/* quantize_potential of a float32 / float64 potential (a value in [0, 65535]). */
#define quantize_float(x) ((int32_t)dht_quantize_f32(x))
#define quantize_double(x) ((int32_t)dht_quantize_f64(x))

/* ------------------------------------------------------------- grid argmax */

/* Row r's edge keys: kh[c] of the edge (r, c)–(r, c+1) (c < W-1), and when r < H-1,
 * kv[c] of (r, c)–(r+1, c). Hashed rule: q·2^15 + tie_hash of the pixels' local indices,
 * the hash dropped where every channel of the two pixels is equal (a plateau); the
 * reference rule: q. `eq` is scratch of W int32. Loops over one row and one channel at
 * a time, so a channel-major image (sn = 1) compares contiguous runs. */
#define GRID_ROW_KEYS(T)                                                                \
    static void grid_row_keys_##T(T *ph, T *pv, int64_t r, int64_t h, int64_t w,        \
                                  int hashed, int affine, T scale, T term, const T *x,  \
                                  int64_t sn, int64_t sd, int64_t d, int64_t base,      \
                                  int32_t *kh, int32_t *kv, int32_t *eq) {              \
        const int below = r + 1 < h;                                                    \
        /* no arithmetic on an empty tensor's (possibly NULL) address */             \
        T *phr = w > 1 ? ph + r * (w - 1) : ph, *pvr = below ? pv + r * w : pv;         \
        /* the potentials' last two operations (p*(1-c) + c*C, written back) and   \
         * quantize_potential, one element at a time */                                 \
        if (affine) {                                                                   \
            for (int64_t c = 0; c + 1 < w; ++c) phr[c] = phr[c] * scale + term;         \
            if (below) for (int64_t c = 0; c < w; ++c) pvr[c] = pvr[c] * scale + term;  \
        }                                                                               \
        for (int64_t c = 0; c + 1 < w; ++c) kh[c] = quantize_##T(phr[c]);              \
        if (below) for (int64_t c = 0; c < w; ++c) kv[c] = quantize_##T(pvr[c]);       \
        if (!hashed) return;                                                            \
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
            const int32_t hash = (int32_t)(dht_mix32(dht_mix32(l) + l + 1u) >> TIE_SHIFT);\
            kh[c] = (kh[c] << DHT_TIE_HASH_BITS) | (hash & (eq[c] - 1));                \
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
            const uint32_t mixed = dht_mix32(dht_mix32(l) + l + (uint32_t)w);          \
            const int32_t hash = (int32_t)(mixed >> TIE_SHIFT);                         \
            kv[c] = (kv[c] << DHT_TIE_HASH_BITS) | (hash & (eq[c] - 1));                \
        }                                                                               \
    }

/* Every pixel's best neighbour: candidates visited up, left, right, down (increasing
 * index), a later one winning ties (>=). ph (B, H, W-1) and pv (B, H-1, W) are the
 * potentials of the horizontal and vertical edges (with `affine`, the Gaussian parts,
 * turned into p*scale + term in place first), quantised here; x the features (row g of
 * pixel g at x + g*sn, channel j at + j*sd), read by the hashed rule only. Writes the
 * direction code (0 up, 1 left, 2 right, 3 down) and the chosen pixel (global index);
 * `scratch` holds 4·W int32. Branch-free maximum: each candidate's key is extended by
 * its direction (key·4 + dir), so the largest extended key is the last of the largest
 * keys in visiting order. */
#define GRID_ARGMAX(T)                                                                  \
    GRID_ROW_KEYS(T)                                                                    \
    void dht_grid_argmax_##T(T *ph, T *pv, int64_t nb, int64_t h, int64_t w,            \
                             int64_t hashed, int64_t affine, double scale, double term, \
                             const T *x, int64_t sn, int64_t sd, int64_t d,             \
                             int32_t *scratch, int8_t *code, int64_t *choice) {         \
        const int64_t step[4] = {-w, -1, 1, w};                                         \
        int32_t *kh = scratch, *up = scratch + w, *down = scratch + 2 * w;              \
        int32_t *eq = scratch + 3 * w;                                                  \
        for (int64_t b = 0; b < nb; ++b) {                                              \
            const int64_t base = b * h * w;                                             \
            T *phb = w > 1 ? ph + b * h * (w - 1) : ph;                                 \
            T *pvb = h > 1 ? pv + b * (h - 1) * w : pv;                                 \
            for (int64_t r = 0; r < h; ++r) {                                           \
                grid_row_keys_##T(phb, pvb, r, h, w, (int)hashed, (int)affine,          \
                                  (T)scale, (T)term, x, sn, sd, d, base, kh, down, eq); \
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
            const T *hb = w > 1 ? horizontal + b * h * (w - 1) : horizontal;            \
            const T *vb = h > 1 ? vertical + b * (h - 1) * w : vertical;                \
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
 * labelling of B row-major H x W images (labels (B*H*W,) in [0, k)). A block's image
 * is image[g] of its last pixel g (the pixels' images, as a sequential scatter), or
 * with image NULL the index b of the image it lies in. Returns 0, or 1 + the first
 * pixel whose label is outside [0, k) (nothing written out of bounds; outputs then
 * partial). */
int64_t dht_grid_blocks(const int64_t *labels, const int64_t *image, int64_t nb, int64_t h,
                        int64_t w, int64_t k, int64_t *counts, int64_t *bbox,
                        int64_t *batch) {
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
                if ((uint64_t)l >= (uint64_t)k) return g + 1;
                int64_t *box = bbox + 4 * l;
                counts[l] += 1;
                batch[l] = image ? image[g] : b;
                /* branch-free (the labels of neighbouring pixels vary unpredictably) */
                box[0] = r < box[0] ? r : box[0];
                box[1] = c < box[1] ? c : box[1];
                box[2] = r > box[2] ? r : box[2];
                box[3] = c > box[3] ? c : box[3];
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------- constant channels */

/* constant (k, d) uint8: 1 where no pixel of the block differs in the channel from the
 * pixel it chose (every block is connected by its choice edges, so: where the block is
 * constant in that channel). NaN differs from everything, -0.0 equals 0.0. Returns 0,
 * or 1 + the first pixel whose label is outside [0, k) or whose choice is outside
 * [0, n) (nothing read or written out of bounds; the output then partial). */
#define GRID_CONSTANT(T)                                                                \
    int64_t dht_grid_constant_##T(const T *x, int64_t sn, int64_t sd, int64_t d,           \
                                  const int64_t *choice, const int64_t *labels,         \
                                  int64_t n, int64_t k, uint8_t *constant) {            \
        for (int64_t i = 0; i < k * d; ++i) constant[i] = 1;                            \
        for (int64_t p = 0; p < n; ++p) {                                               \
            const int64_t q = choice[p], l = labels[p];                                 \
            if ((uint64_t)l >= (uint64_t)k || (uint64_t)q >= (uint64_t)n) return p + 1; \
            if (q == p) continue; /* (never on a grid: every pixel has a neighbour) */  \
            const T *a = x + p * sn, *b = x + q * sn;                                   \
            uint8_t *out = constant + l * d;                                            \
            for (int64_t j = 0; j < d; ++j) /* branch-free: out[j] &= equal */          \
                out[j] &= (uint8_t)(a[j * sd] == b[j * sd]);                            \
        }                                                                               \
        return 0;                                                                       \
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

/* (x[dst[e]] - x[src[e]])^2 per channel j at out + e*oe + j*oj (row-major (m, d):
 * oe = d, oj = 1; channel-major: oe = 1, oj = m), one IEEE subtraction and one product
 * each: the gathers, sub and pow(2) of the tensor version, which squares as t*t. With
 * `negate`, -(t*t) (exact). Returns 0, or 1 + the first edge with an end outside
 * [0, nb). */
#define EDGE_SQUARED_DIFFERENCE(T)                                                      \
    int64_t dht_edge_squared_difference_##T(const T *x, int64_t sn, int64_t sd,         \
                                            int64_t d, int64_t nb, const int64_t *src,  \
                                            const int64_t *dst, int64_t m, T *out,      \
                                            int64_t oe, int64_t oj, int64_t negate) {   \
        for (int64_t e = 0; e < m; ++e) {                                               \
            const int64_t u = src[e], v = dst[e];                                       \
            if (u < 0 || u >= nb || v < 0 || v >= nb) return e + 1;                     \
            const T *a = x + v * sn, *b = x + u * sn;                                   \
            T *o = out + e * oe;                                                        \
            if (d == 3) { /* the usual width, unrolled (the same operations) */         \
                const T t0 = a[0] - b[0], t1 = a[sd] - b[sd];                           \
                const T t2 = a[2 * sd] - b[2 * sd];                                     \
                const T s0 = t0 * t0, s1 = t1 * t1, s2 = t2 * t2;                       \
                o[0] = negate ? -s0 : s0;                                               \
                o[oj] = negate ? -s1 : s1;                                              \
                o[2 * oj] = negate ? -s2 : s2;                                          \
                continue;                                                               \
            }                                                                           \
            for (int64_t j = 0; j < d; ++j) {                                           \
                const T t = a[j * sd] - b[j * sd];                                      \
                o[j * oj] = negate ? -(t * t) : t * t;                                  \
            }                                                                           \
        }                                                                               \
        return 0;                                                                       \
    }

EDGE_SQUARED_DIFFERENCE(float)
EDGE_SQUARED_DIFFERENCE(double)

/* edge_affinity's last steps, in place on p (m,): the Gaussian potential p[e] of the
 * edge (src[e], dst[e]), replaced by loop[src[e]] on a loop (torch.where), then, with
 * `compact`, p*scale + (four_c*mass) / (perimeter*perimeter) with the union mass and
 * perimeter of dht_union_mass_perimeter (float32, converted to T): the tensor version's
 * elementwise operations in its order and dtype. int64 sizes (nb,) and boxes (nb, 4).
 * Returns 0, or 1 + the first edge with an end outside [0, nb). */
#define EDGE_COMBINE(T)                                                                 \
    int64_t dht_edge_combine_##T(T *p, const T *loop, const int64_t *size,              \
                                 const int64_t *bbox, int64_t nb, const int64_t *src,   \
                                 const int64_t *dst, int64_t m, int64_t compact,        \
                                 double scale_, double four_c_) {                       \
        const T scale = (T)scale_, four_c = (T)four_c_;                                 \
        for (int64_t e = 0; e < m; ++e) {                                               \
            const int64_t u = src[e], v = dst[e];                                       \
            if (u < 0 || u >= nb || v < 0 || v >= nb) return e + 1;                     \
            T value = u == v ? loop[u] : p[e];                                          \
            if (compact) {                                                              \
                const int64_t *a = bbox + 4 * u, *b = bbox + 4 * v;                     \
                const float mu = (float)size[u];                                        \
                const float mass = u == v ? mu : mu + (float)size[v];                   \
                const int64_t y0 = a[0] < b[0] ? a[0] : b[0];                           \
                const int64_t x0 = a[1] < b[1] ? a[1] : b[1];                           \
                const int64_t y1 = a[2] > b[2] ? a[2] : b[2];                           \
                const int64_t x1 = a[3] > b[3] ? a[3] : b[3];                           \
                const float q = 2.0f + (float)(y1 - y0);                                \
                const T perimeter = (T)(q + (float)(x1 - x0));                          \
                const T term = (four_c * (T)mass) / (perimeter * perimeter);            \
                value = value * scale + term;                                           \
            }                                                                           \
            p[e] = value;                                                               \
        }                                                                               \
        return 0;                                                                       \
    }

EDGE_COMBINE(float)
EDGE_COMBINE(double)

/* One row of GRID_SQUARED: nx squared differences s[c*SN] - a[c*SN] stored at o[c*OC],
 * negated with NEG. Its callers pass literal 1s and 0s where they can, so that the
 * compiler gets loops of unit stride it can vectorise (the same operations). */
#define GRID_SQUARED_ROW(T, SN, OC, NEG)                                                \
    for (int64_t c = 0; c < nx; ++c) {                                                  \
        const T t = s[c * (SN)] - a[c * (SN)];                                          \
        o[c * (OC)] = (NEG) ? -(t * t) : t * t;                                         \
    }

/* Squared differences of grid neighbours: for the pixels p = base + b*image + r*row + c
 * ((b, r, c) in nb x ny x nx) and every channel j, (x[p + step] - x[p])^2 (one IEEE
 * subtraction and one product, as the tensor version's sub and pow(2)) at
 * out + b*ob + r*orow + c*oc + j*oj (the layout torch gives that sub); with `negate`
 * -(x[p + step] - x[p])^2 (an exact negation: torch's sum of them has the bits of -(the
 * sum of the squares) except for a zero sum, +0 where -(sum) is -0; equal after exp). */
#define GRID_SQUARED(T)                                                                 \
    void dht_grid_squared_##T(const T *x, int64_t sn, int64_t sd, int64_t d,            \
                              int64_t base, int64_t image, int64_t row, int64_t step,   \
                              int64_t nb, int64_t ny, int64_t nx, T *out, int64_t ob,   \
                              int64_t orow, int64_t oc, int64_t oj, int64_t negate) {   \
        for (int64_t b = 0; b < nb; ++b)                                                \
            for (int64_t r = 0; r < ny; ++r)                                            \
                for (int64_t j = 0; j < d; ++j) {                                       \
                    const T *a = x + (base + b * image + r * row) * sn + j * sd;        \
                    const T *s = a + step * sn;                                         \
                    T *o = out + b * ob + r * orow + j * oj;                            \
                    if (sn == 1 && oc == 1 && negate)                                   \
                        GRID_SQUARED_ROW(T, 1, 1, 1)                                    \
                    else if (sn == 1 && oc == 1)                                        \
                        GRID_SQUARED_ROW(T, 1, 1, 0)                                    \
                    else if (oc == 1 && negate) /* row-major x, channel-major out */    \
                        GRID_SQUARED_ROW(T, sn, 1, 1)                                   \
                    else                                                                \
                        GRID_SQUARED_ROW(T, sn, oc, negate)                             \
                }                                                                       \
    }

GRID_SQUARED(float)
GRID_SQUARED(double)

/* The 'size'-weighted moments of the grid level's blocks (no gradient): mean (k, d) =
 * the pixels' sum per block in pixel order (index_add_'s sequential order) / count,
 * var (k, d) = the sum of (x - mean)^2 in pixel order / count, 0 where the block is
 * constant in the channel (no pixel differs there from the pixel it chose: the
 * dht_grid_constant test). The tensor version's elementwise IEEE operations in its
 * order. Returns 0, -1 when the scratch could not be allocated, or 1 + the first pixel
 * whose label is outside [0, k) or whose choice is outside [0, n) (nothing read or
 * written out of bounds; the outputs then partial). */
#define GRID_SIZE_MOMENTS(T)                                                            \
    int64_t dht_grid_size_moments_##T(const T *x, int64_t sn, int64_t sd, int64_t d,    \
                                      const int64_t *choice, const int64_t *labels,     \
                                      const int64_t *counts, int64_t n, int64_t k,      \
                                      T *mean, T *var) {                                \
        uint8_t *constant = (uint8_t *)malloc((size_t)(k * d > 0 ? k * d : 1));         \
        if (!constant) return -1;                                                       \
        for (int64_t i = 0; i < k * d; ++i) {                                           \
            mean[i] = 0;                                                                \
            var[i] = 0;                                                                 \
            constant[i] = 1;                                                            \
        }                                                                               \
        for (int64_t p = 0; p < n; ++p) /* one pass of range checks first */          \
            if ((uint64_t)labels[p] >= (uint64_t)k || (uint64_t)choice[p] >= (uint64_t)n) { \
                free(constant);                                                         \
                return p + 1;                                                           \
            }                                                                           \
        if (d == 3) /* the usual width, unrolled (the same additions) */              \
            for (int64_t p = 0; p < n; ++p) {                                           \
                const T *a = x + p * sn;                                                \
                T *o = mean + labels[p] * 3;                                            \
                const T a0 = a[0], a1 = a[sd], a2 = a[2 * sd];                          \
                o[0] += a0;                                                             \
                o[1] += a1;                                                             \
                o[2] += a2;                                                             \
            }                                                                           \
        else                                                                            \
            for (int64_t p = 0; p < n; ++p) {                                           \
                const T *a = x + p * sn;                                                \
                T *o = mean + labels[p] * d;                                            \
                for (int64_t j = 0; j < d; ++j) o[j] += a[j * sd];                      \
            }                                                                           \
        for (int64_t i = 0; i < k; ++i) {                                               \
            const T total = (T)counts[i];                                               \
            for (int64_t j = 0; j < d; ++j) mean[i * d + j] /= total;                   \
        }                                                                               \
        for (int64_t p = 0; p < n; ++p) {                                               \
            const int64_t l = labels[p], q = choice[p];                                 \
            const T *a = x + p * sn, *b = x + q * sn, *mu = mean + l * d;               \
            T *o = var + l * d;                                                         \
            uint8_t *same = constant + l * d;                                           \
            if (d == 3) {                                                               \
                const int self = q == p;                                                \
                const T a0 = a[0], a1 = a[sd], a2 = a[2 * sd];                          \
                const T t0 = a0 - mu[0], t1 = a1 - mu[1], t2 = a2 - mu[2];              \
                o[0] += t0 * t0;                                                        \
                o[1] += t1 * t1;                                                        \
                o[2] += t2 * t2;                                                        \
                same[0] &= (uint8_t)(self | (a0 == b[0]));                              \
                same[1] &= (uint8_t)(self | (a1 == b[sd]));                             \
                same[2] &= (uint8_t)(self | (a2 == b[2 * sd]));                         \
                continue;                                                               \
            }                                                                           \
            for (int64_t j = 0; j < d; ++j) {                                           \
                const T t = a[j * sd] - mu[j];                                          \
                o[j] += t * t;                                                          \
                same[j] &= (uint8_t)(q == p || a[j * sd] == b[j * sd]);                 \
            }                                                                           \
        }                                                                               \
        for (int64_t i = 0; i < k; ++i) {                                               \
            const T total = (T)counts[i];                                               \
            for (int64_t j = 0; j < d; ++j) {                                           \
                const T v = var[i * d + j] / total;                                     \
                var[i * d + j] = constant[i * d + j] ? (T)0 : v;                        \
            }                                                                           \
        }                                                                               \
        free(constant);                                                                 \
        return 0;                                                                       \
    }

GRID_SIZE_MOMENTS(float)
GRID_SIZE_MOMENTS(double)

/* Token assembly kernels (assemble_tokens' float work without gradients; issue 15).
 *
 * Every float operation here is one the tensor path makes, in the same dtype and in the
 * same order, so the results are the same bits (IEEE-754 round-to-nearest, compiled
 * with -ffp-contract=off: no fused multiply-add):
 *
 * - block sums accumulate the rows in index order, as torch's CPU bincount(weights=)
 *   and index_add_ along dim 0 do (a serial loop over the index; the accumulator is the
 *   output's dtype and starts at +0.0);
 * - everything else is elementwise: + - * / and exact copies (gathers).
 *
 * Two variants of each kernel, float (f32) and double (f64), from one macro body. Every
 * kernel checks its indices and returns -1 when one is out of range, having written only
 * into its own fresh output buffers (the caller drops them and takes the tensor path).
 * No globals: re-entrant. */
#include <stdint.h>
#include <string.h>

static int labels_ok(const int64_t *restrict labels, int64_t n, int64_t k) {
    /* A negative label is a huge unsigned one. */
    uint64_t bad = 0, limit = (uint64_t)k;
    for (int64_t i = 0; i < n; ++i) bad |= (uint64_t)((uint64_t)labels[i] >= limit);
    return k >= 0 && !bad;
}

#define DEFINE_KERNELS(T, SUFFIX)                                                           \
/* Block sums of rows, added into out (k, d): out[l] += x[i] (* (T)weights[i]) for the  \
 * i < n with labels[i] = l, in index order (torch's CPU index_add_ along dim 0 and     \
 * bincount(weights=)). x (n, d) with element strides (si, sj). Returns -1 for a label  \
 * outside [0, k) (out is then partly written). */                                      \
static int64_t block_sums_##SUFFIX(const T *restrict x, int64_t n, int64_t d, int64_t si,\
                                   int64_t sj, const int64_t *restrict labels, int64_t k,\
                                   const int64_t *restrict weights, T *restrict out) {  \
    const uint64_t limit = (uint64_t)k;                                                 \
    if (!weights && d == 3) {                                                           \
        /* RGB: a run of one label adds into registers (the same additions in the same  \
         * order as adding into out[l] row by row), three chains at once. */            \
        int64_t i = 0;                                                                  \
        while (i < n) {                                                                 \
            int64_t l = labels[i];                                                      \
            if ((uint64_t)l >= limit) return -1;                                        \
            T *row = out + l * 3;                                                       \
            T s0 = row[0], s1 = row[1], s2 = row[2];                                    \
            do {                                                                        \
                const T *src = x + i * si;                                              \
                s0 += src[0];                                                           \
                s1 += src[sj];                                                          \
                s2 += src[2 * sj];                                                      \
                ++i;                                                                    \
            } while (i < n && labels[i] == l);                                          \
            row[0] = s0; row[1] = s1; row[2] = s2;                                      \
        }                                                                               \
        return 0;                                                                       \
    }                                                                                   \
    for (int64_t i = 0; i < n; ++i) {                                                   \
        if ((uint64_t)labels[i] >= limit) return -1;                                    \
        T *row = out + labels[i] * d;                                                   \
        const T *src = x + i * si;                                                      \
        if (weights) {                                                                  \
            T w = (T)weights[i];                                                        \
            for (int64_t j = 0; j < d; ++j) row[j] += src[j * sj] * w;                  \
        } else if (sj == 1) {                                                           \
            for (int64_t j = 0; j < d; ++j) row[j] += src[j];                           \
        } else {                                                                        \
            for (int64_t j = 0; j < d; ++j) row[j] += src[j * sj];                      \
        }                                                                               \
    }                                                                                   \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
/* The sums (k, d) divided by the sizes: out[l] = out[l] / (T)sizes[l]. */              \
static void divide_rows_##SUFFIX(T *restrict out, int64_t k, int64_t d,                 \
                                 const int64_t *restrict sizes) {                       \
    for (int64_t l = 0; l < k; ++l) {                                                   \
        T count = (T)sizes[l];                                                          \
        T *row = out + l * d;                                                           \
        for (int64_t j = 0; j < d; ++j) row[j] = row[j] / count;                        \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* Mean injection of B images (B, C, HW) with labels (B*HW,) of K tokens:               \
 * mean[l, c] = (sum over the pixels p of l, in pixel order, of image[p, c]) / (T)size[l]\
 * (torch.bincount(labels, weights=plane) / sizes.to(T)), and, when out is given,       \
 * out[p, c] = (image[p, c] - mean[l, c]) + values[l, c], out laid out as the image. */ \
int64_t dht_mean_injection_##SUFFIX(const T *restrict image, int64_t b, int64_t c,      \
                                    int64_t hw, const int64_t *restrict labels,         \
                                    int64_t k, const int64_t *restrict sizes,           \
                                    const T *restrict values, T *restrict mean,         \
                                    T *restrict out) {                                  \
    for (int64_t i = 0; i < k * c; ++i) mean[i] = (T)0;                                 \
    /* (no pixels or channels: no plane pointers, NULL + 0 included) */                 \
    const int64_t images = (hw > 0 && c > 0) ? b : 0;                                   \
    for (int64_t img = 0; img < images; ++img)  /* pixels: rows of strides (1, hw) */   \
        if (block_sums_##SUFFIX(image + img * c * hw, hw, c, 1, hw, labels + img * hw, k,\
                                NULL, mean) < 0) return -1;                             \
    divide_rows_##SUFFIX(mean, k, c, sizes);                                            \
    if (!out) return 0;                                                                 \
    for (int64_t img = 0; img < images; ++img) {                                        \
        const int64_t *lab = labels + img * hw;                                         \
        const T *plane = image + img * c * hw;                                          \
        T *dst = out + img * c * hw;                                                    \
        int64_t p = 0;                                                                  \
        while (p < hw) {              /* a run of one label: one mean and value each */ \
            int64_t l = lab[p], q = p + 1;                                              \
            while (q < hw && lab[q] == l) ++q;                                          \
            for (int64_t ch = 0; ch < c; ++ch) {                                        \
                const T m = mean[l * c + ch], v = values[l * c + ch];                   \
                const T *src = plane + ch * hw;                                         \
                T *to = dst + ch * hw;                                                  \
                for (int64_t r = p; r < q; ++r) to[r] = (src[r] - m) + v;               \
            }                                                                           \
            p = q;                                                                      \
        }                                                                               \
    }                                                                                   \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
/* Block means of rows: out[l] = (sum over i with labels[i] = l, in index order, of     \
 * (weights ? x[i] * (T)weights[i] : x[i])) / (T)sizes[l] (the zeros(K, d).index_add_   \
 * (0, labels, x) / sizes.to(T) of the tensor path). x (n, d) with element strides      \
 * (si, sj), out (k, d). */                                                             \
int64_t dht_block_means_##SUFFIX(const T *restrict x, int64_t n, int64_t d,             \
                                 int64_t si, int64_t sj,                                \
                                 const int64_t *restrict labels, int64_t k,             \
                                 const int64_t *restrict weights,                       \
                                 const int64_t *restrict sizes, T *restrict out) {      \
    for (int64_t i = 0; i < k * d; ++i) out[i] = (T)0;                                  \
    if (block_sums_##SUFFIX(x, n, d, si, sj, labels, k, weights, out) < 0) return -1;   \
    divide_rows_##SUFFIX(out, k, d, sizes);                                             \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
/* Ward terms of the edges (a, b) of units with state rows [size, f (w - 1)]:           \
 * sq[e, j] = (f_a[j] - f_b[j])^2 (as diff * diff), weight[e] = s_a * s_b / (s_a + s_b),  \
 * uni[e] = s_a + s_b. The cost is sq.sum(-1) * weight (that sum stays torch's).      */ \
int64_t dht_ward_terms_##SUFFIX(const T *restrict state, int64_t n, int64_t w,          \
                                const int64_t *restrict a, const int64_t *restrict bb,  \
                                int64_t e, T *restrict sq, T *restrict weight,          \
                                T *restrict uni) {                                      \
    if (!labels_ok(a, e, n) || !labels_ok(bb, e, n)) return -1;                         \
    int64_t c = w - 1;                                                                  \
    for (int64_t i = 0; i < e; ++i) {                                                   \
        const T *ra = state + a[i] * w, *rb = state + bb[i] * w;                        \
        T sa = ra[0], sb = rb[0];                                                       \
        T s = sa + sb;                                                                  \
        uni[i] = s;                                                                     \
        weight[i] = sa * sb / s;                                                        \
        T *dst = sq + i * c;                                                            \
        for (int64_t j = 0; j < c; ++j) {                                               \
            T diff = ra[1 + j] - rb[1 + j];                                             \
            dst[j] = diff * diff;                                                       \
        }                                                                               \
    }                                                                                   \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
/* Merged state rows of the pairs (a, b): [s_a + s_b, (f_a * s_a + f_b * s_b) / (s_a +   \
 * s_b)] (two-term weighted means).                                                 */ \
int64_t dht_merged_rows_##SUFFIX(const T *restrict state, int64_t n, int64_t w,         \
                                 const int64_t *restrict a, const int64_t *restrict bb, \
                                 int64_t m, T *restrict out) {                          \
    if (!labels_ok(a, m, n) || !labels_ok(bb, m, n)) return -1;                         \
    for (int64_t i = 0; i < m; ++i) {                                                   \
        const T *ra = state + a[i] * w, *rb = state + bb[i] * w;                        \
        T sa = ra[0], sb = rb[0];                                                       \
        T s = sa + sb;                                                                  \
        T *dst = out + i * w;                                                           \
        dst[0] = s;                                                                     \
        for (int64_t j = 1; j < w; ++j) dst[j] = (ra[j] * sa + rb[j] * sb) / s;         \
    }                                                                                   \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
/* The budget loss's squared differences, in float64: sq[i, j] = (double)f[i, j] -     \
 * (double)g[labels[i], j], squared (x * x, as torch's pow(x, 2)); f (k, c) and g (n, c) \
 * with row strides fs, gs. The per-token sum over j stays torch's.                  */ \
int64_t dht_budget_loss_terms_##SUFFIX(const T *restrict f, int64_t k, int64_t c,       \
                                       int64_t fs, const T *restrict g, int64_t n,      \
                                       int64_t gs, const int64_t *restrict labels,      \
                                       double *restrict sq) {                           \
    if (!labels_ok(labels, k, n)) return -1;                                            \
    for (int64_t i = 0; i < k; ++i) {                                                   \
        const T *a = f + i * fs, *b = g + labels[i] * gs;                               \
        for (int64_t j = 0; j < c; ++j) {                                               \
            double diff = (double)a[j] - (double)b[j];                                  \
            sq[i * c + j] = diff * diff;                                                \
        }                                                                               \
    }                                                                                   \
    return 0;                                                                           \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* Sizes of the blocks of a composed partition and the image of every block:
 * merged[l] = sum of sizes[i] over labels[i] = l; batch_out[l] = batch[i] of any such i
 * (they agree within a block). */
int64_t dht_merge_sizes(const int64_t *restrict labels, int64_t n, int64_t k,
                        const int64_t *restrict sizes, const int64_t *restrict batch,
                        int64_t *restrict merged, int64_t *restrict batch_out) {
    if (!labels_ok(labels, n, k)) return -1;
    if (k > 0) memset(merged, 0, (size_t)k * sizeof(int64_t)); /* (NULL when empty) */
    for (int64_t i = 0; i < n; ++i) {
        merged[labels[i]] += sizes[i];
        batch_out[labels[i]] = batch[i];
    }
    return 0;
}

/* Items per block: counts[l] = #{i : labels[i] = l} (torch.bincount(labels, minlength=k)
 * for labels in 0..k-1). */
int64_t dht_count_labels(const int64_t *restrict labels, int64_t n, int64_t k,
                         int64_t *restrict counts) {
    const uint64_t limit = (uint64_t)k;
    if (k > 0) memset(counts, 0, (size_t)k * sizeof(int64_t)); /* (NULL when empty) */
    for (int64_t i = 0; i < n; ++i) {
        uint64_t l = (uint64_t)labels[i];
        if (l >= limit) return -1;
        counts[l] += 1;
    }
    return 0;
}

/* The budget loss per image: loss[batch[i]] += added[i] * (double)sizes[i], in index
 * order (torch's index_add_ of a 1-D float64 source on the CPU), loss starting at 0. */
int64_t dht_budget_loss(const double *restrict added, const int64_t *restrict sizes,
                        const int64_t *restrict batch, int64_t k, int64_t num_images,
                        double *restrict loss) {
    if (!labels_ok(batch, k, num_images)) return -1;
    for (int64_t b = 0; b < num_images; ++b) loss[b] = 0.0;
    for (int64_t i = 0; i < k; ++i) loss[batch[i]] += added[i] * (double)sizes[i];
    return 0;
}

/* The discrete steps of a general contraction level (dhtgraph.hierarchy.contraction).
 *
 * dht_argmax_choice: every block's best incident edge in one pass over the
 * edges, with the keys of the tensor implementation bit for bit:
 *   reference: (q << 47) | dst
 *   hashed:    (((q << 15) | h) << 31) | local(dst),  h = 0 along an edge whose two ends
 *              have exactly equal means in every channel (equal_ends), else
 *              tie_hash(local(src), local(dst)),
 * q = floor(clip(nan_to_num(K), 0, 1) * 65535) (quantize_potential: one correctly rounded
 * multiply in the potential's own type, so C and torch give the same integer), the
 * largest key per source block (scatter-max from -1), edges into frozen blocks skipped.
 * dht_choice_labels: the same, then the canonical components of the choices (contract's
 * new blocks) in the same call.
 *
 * dht_constant_channels: snap_constant_blocks's test (every item of a new block equals
 * the block's first item in the channel, by ==, and has zero variance there).
 *
 * dht_pool_integers: summed sizes, merged boxes (min / max) and the image of every new
 * block (_pool_blocks's integer statistics).
 *
 * dht_weighted_moments: the pooled means and variances (below); dht_pool_level: they and
 * the integer statistics in one call.
 *
 * Re-entrant (no globals); every index is checked against its range (an error code, never
 * a write out of bounds). Float comparisons are IEEE ==, as torch's: NaN != NaN and
 * -0.0 == 0.0. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h" /* dht_pair_hash (tie_hash), dht_quantize_f32/f64,
                     * dht_functional_components */

#define QBITS 16
#define INDEX_BITS (63 - QBITS)
#define HASH_BITS DHT_TIE_HASH_BITS
#define LOCAL_BITS 31

enum { DT_INT64 = 0, DT_F32 = 1, DT_F64 = 2 };
enum { OK = 0, ERR_INDEX = -1, ERR_LOCAL = -2, ERR_MEMORY = -3, ERR_CHOICE = -5 };

static inline int64_t quantized(const void *potential, int64_t dtype, int64_t e) {
    switch (dtype) {
    case DT_F32: return dht_quantize_f32(((const float *)potential)[e]);
    case DT_F64: return dht_quantize_f64(((const double *)potential)[e]);
    default: return ((const int64_t *)potential)[e];
    }
}

/* Exact equality of two mean rows in every channel (d = 0: equal). */
static inline int equal_rows(const void *mean, int64_t dtype, int64_t d, int64_t i, int64_t j) {
    if (dtype == DT_F32) {
        const float *a = (const float *)mean + i * d, *b = (const float *)mean + j * d;
        for (int64_t c = 0; c < d; ++c)
            if (!(a[c] == b[c])) return 0;
    } else {
        const double *a = (const double *)mean + i * d, *b = (const double *)mean + j * d;
        for (int64_t c = 0; c < d; ++c)
            if (!(a[c] == b[c])) return 0;
    }
    return 1;
}

/* tie_hash of m index pairs. */
void dht_tie_hash(const int64_t *a, const int64_t *b, int64_t m, int64_t *out) {
    for (int64_t e = 0; e < m; ++e) out[e] = dht_pair_hash(a[e], b[e]);
}

/* local_index: i minus the first index of its run of equal batch values. */
void dht_local_index(const int64_t *batch, int64_t k, int64_t *out) {
    int64_t first = 0;
    for (int64_t i = 0; i < k; ++i) {
        if (i > 0 && batch[i] != batch[i - 1]) first = i;
        out[i] = i - first;
    }
}

/* equal_ends of m edges (out: 0/1 bytes). Returns ERR_INDEX for an end outside [0, k). */
int64_t dht_equal_ends(const void *mean, int64_t mean_dtype, int64_t d, int64_t k,
                       const int64_t *src, const int64_t *dst, int64_t m, uint8_t *out) {
    for (int64_t e = 0; e < m; ++e) {
        int64_t v = src[e], u = dst[e];
        if (v < 0 || v >= k || u < 0 || u >= k) return ERR_INDEX;
        out[e] = (uint8_t)equal_rows(mean, mean_dtype, d, v, u);
    }
    return OK;
}

/* argmax_choice of k blocks over m edges (src[e], dst[e]).
 *
 * potential: m values of type p_dtype (DT_INT64: already quantised).
 * movable:   k bytes or NULL (every block movable).
 * hashed:    0 reference rule, 1 hashed rule; then batch (k, NULL: one graph) gives the
 *            local indices and, when plateau is 1, mean (k x d of mean_dtype; NULL when
 *            d = 0) the equal-ends test.
 * choice:    out, k int64 (first the running maxima of the keys).
 * Returns OK, ERR_INDEX (an edge end outside [0, k)), ERR_LOCAL (a local index >= 2^31
 * under the hashed rule) or ERR_MEMORY (no scratch for the k local indices).
 *
 * The running maximum of the current source block stays in a register and is stored
 * when the source changes (coalesced graphs list each block's edges together; any order
 * gives the same result). Every edge's key is computed whole, without a data-dependent
 * branch (hash and equal-means test included: a skip test on the potential cost more in
 * mispredictions than it saved, ~2x on a 224^2 level), and the running maximum taken by
 * a select; the walks are specialised for float32 potentials (and float32 means of
 * three channels), every block movable. */
static int64_t choice_walk(const void *potential, int64_t p_dtype, const int64_t *src,
                           const int64_t *dst, int64_t m, int64_t k, const uint8_t *movable,
                           int64_t hashed, const int64_t *batch, int64_t plateau,
                           const void *mean, int64_t mean_dtype, int64_t d, int64_t *local,
                           int64_t *choice);

int64_t dht_argmax_choice(const void *potential, int64_t p_dtype, const int64_t *src,
                          const int64_t *dst, int64_t m, int64_t k, const uint8_t *movable,
                          int64_t hashed, const int64_t *batch, int64_t plateau,
                          const void *mean, int64_t mean_dtype, int64_t d, int64_t *choice) {
    int64_t *local = NULL;
    if (hashed) {
        /* local (k int64), then the first mix of every local index (k uint32) */
        local = (int64_t *)malloc((size_t)(k > 0 ? k : 1) * (sizeof(int64_t) + sizeof(uint32_t)));
        if (!local) return ERR_MEMORY;
    }
    int64_t rc = choice_walk(potential, p_dtype, src, dst, m, k, movable, hashed, batch,
                             plateau, mean, mean_dtype, d, local, choice);
    free(local);
    return rc;
}

/* The walk of both rules over the edges: the running maximum cb of the current source
 * block cv stays in a register and is stored into best[cv] when the source changes (then
 * ON_SOURCE runs, as it does for the first source); every end is checked (ERR_INDEX);
 * edges into frozen blocks are skipped; the body (the rest of the arguments) sees the
 * edge e = (v, u) and updates cb. */
#define SOURCE_RUNS(ON_SOURCE, ...)                                                      \
    if (m > 0) {                                                                         \
        int64_t cv = src[0], cb = -1;                                                    \
        if (cv < 0 || cv >= k) return ERR_INDEX;                                         \
        ON_SOURCE;                                                                       \
        for (int64_t e = 0; e < m; ++e) {                                                \
            int64_t v = src[e], u = dst[e];                                              \
            if (v != cv) {                                                               \
                if (v < 0 || v >= k) return ERR_INDEX;                                   \
                best[cv] = cb;                                                           \
                cv = v;                                                                  \
                cb = best[v];                                                            \
                ON_SOURCE;                                                               \
            }                                                                            \
            if (u < 0 || u >= k) return ERR_INDEX;                                       \
            if (movable && !movable[u]) continue;                                        \
            __VA_ARGS__;                                                                 \
        }                                                                                \
        best[cv] = cb;                                                                   \
    }

/* Exact equality of two mean rows in every channel, without a branch (d = 0: equal). */
static inline __attribute__((always_inline)) uint64_t same_rows(const void *mean,
                                                                int64_t dtype, int64_t d,
                                                                int64_t i, int64_t j) {
    uint64_t same = 1;
    if (dtype == DT_F32) {
        const float *a = (const float *)mean + i * d, *b = (const float *)mean + j * d;
        for (int64_t c = 0; c < d; ++c) same &= (uint64_t)(a[c] == b[c]);
    } else {
        const double *a = (const double *)mean + i * d, *b = (const double *)mean + j * d;
        for (int64_t c = 0; c < d; ++c) same &= (uint64_t)(a[c] == b[c]);
    }
    return same;
}

/* The running maxima (best, k) of the reference rule's keys. */
static inline __attribute__((always_inline)) int64_t reference_walk(
        const void *potential, int64_t p_dtype, const int64_t *src, const int64_t *dst,
        int64_t m, int64_t k, const uint8_t *movable, int64_t *best) {
    SOURCE_RUNS((void)0, {
        int64_t key = (int64_t)(((uint64_t)quantized(potential, p_dtype, e) << INDEX_BITS)
                                | (uint64_t)u);
        cb = key > cb ? key : cb;
    })
    return OK;
}

/* The running maxima (best, k) of the hashed rule's keys: q, then the hash of the two
 * local indices (0 along an edge of equal means when plateau), then the local index. */
static inline __attribute__((always_inline)) int64_t hashed_walk(
        const void *potential, int64_t p_dtype, const int64_t *src, const int64_t *dst,
        int64_t m, int64_t k, const uint8_t *movable, int64_t plateau, const void *mean,
        int64_t mean_dtype, int64_t d, const int64_t *local, const uint32_t *mixed,
        int64_t *best) {
    const int shift = HASH_BITS + LOCAL_BITS;
    int64_t lv = 0; /* the local index of the current source */
    uint32_t mv = 0; /* its first mix */
    SOURCE_RUNS((lv = local[cv], mv = mixed[cv]), {
        uint64_t q = (uint64_t)quantized(potential, p_dtype, e) << shift;
        int64_t lu = local[u];
        /* dht_pair_hash(lv, lu), the first mix of the smaller index from the table */
        uint32_t first = lv < lu ? mv + (uint32_t)(uint64_t)lu
                                 : mixed[u] + (uint32_t)(uint64_t)lv;
        uint64_t h = (uint64_t)(dht_mix32(first) >> (32 - DHT_TIE_HASH_BITS));
        if (plateau) h *= 1 - same_rows(mean, mean_dtype, d, v, u); /* a plateau: no hash */
        int64_t key = (int64_t)(q | (h << LOCAL_BITS) | (uint64_t)lu);
        cb = key > cb ? key : cb;
    })
    return OK;
}

/* The local indices (hashed rule; ERR_LOCAL: one >= 2^31), the walk of the rule
 * (specialised where the arguments allow), then the choices from the maxima. */
static int64_t choice_walk(const void *potential, int64_t p_dtype, const int64_t *src,
                           const int64_t *dst, int64_t m, int64_t k, const uint8_t *movable,
                           int64_t hashed, const int64_t *batch, int64_t plateau,
                           const void *mean, int64_t mean_dtype, int64_t d, int64_t *local,
                           int64_t *choice) {
    int64_t *best = choice; /* the running maxima, turned into the choices at the end */
    for (int64_t v = 0; v < k; ++v) best[v] = -1;
    int64_t rc;
    if (!hashed) {
        rc = p_dtype == DT_F32 && !movable
                 ? reference_walk(potential, DT_F32, src, dst, m, k, NULL, best)
                 : reference_walk(potential, p_dtype, src, dst, m, k, movable, best);
        if (rc != OK) return rc;
        const int64_t mask = (INT64_C(1) << INDEX_BITS) - 1;
        for (int64_t v = 0; v < k; ++v) {
            int64_t b = best[v];
            choice[v] = (b >= 0 && (!movable || movable[v])) ? (b & mask) : v;
        }
        return OK;
    }
    if (batch) {
        dht_local_index(batch, k, local);
        if (k > (INT64_C(1) << LOCAL_BITS))
            for (int64_t v = 0; v < k; ++v)
                if (local[v] >= (INT64_C(1) << LOCAL_BITS)) return ERR_LOCAL;
    } else {
        if (k > (INT64_C(1) << LOCAL_BITS)) return ERR_LOCAL;
        for (int64_t v = 0; v < k; ++v) local[v] = v;
    }
    uint32_t *mixed = (uint32_t *)(local + (k > 0 ? k : 1));
    for (int64_t v = 0; v < k; ++v) mixed[v] = dht_mix64(local[v]);
    if (p_dtype == DT_F32 && !movable && plateau && mean_dtype == DT_F32 && d == 3)
        rc = hashed_walk(potential, DT_F32, src, dst, m, k, NULL, 1, mean, DT_F32, 3, local,
                         mixed, best);
    else if (p_dtype == DT_F32 && !movable && !plateau)
        rc = hashed_walk(potential, DT_F32, src, dst, m, k, NULL, 0, NULL, DT_F32, 0, local,
                         mixed, best);
    else
        rc = hashed_walk(potential, p_dtype, src, dst, m, k, movable, plateau, mean,
                         mean_dtype, d, local, mixed, best);
    if (rc != OK) return rc;
    const int64_t mask = (INT64_C(1) << LOCAL_BITS) - 1;
    for (int64_t v = 0; v < k; ++v) {
        int64_t b = best[v];
        choice[v] = (b >= 0 && (!movable || movable[v])) ? v - local[v] + (b & mask) : v;
    }
    return OK;
}

/* dht_argmax_choice, then the canonical components of v -> choice[v] (components.c's
 * dht_choice_components: Rem's union-find, roots the smallest nodes, labels in node
 * order) in the same call: labels (k) receives them. Returns their number (>= 0), the
 * error code of dht_argmax_choice (then labels is not written) or ERR_CHOICE (a choice
 * outside [0, k): choice is written, labels not; the caller takes the components path,
 * which refuses it as for the two calls). */
int64_t dht_choice_labels(const void *potential, int64_t p_dtype, const int64_t *src,
                          const int64_t *dst, int64_t m, int64_t k, const uint8_t *movable,
                          int64_t hashed, const int64_t *batch, int64_t plateau,
                          const void *mean, int64_t mean_dtype, int64_t d, int64_t *choice,
                          int64_t *labels) {
    /* scratch: the local indices and their mixes (hashed), then reused as the parents */
    size_t kk = (size_t)(k > 0 ? k : 1);
    int64_t *scratch = (int64_t *)malloc(kk * (sizeof(int64_t) + sizeof(uint32_t)));
    if (!scratch) return ERR_MEMORY;
    int64_t rc = choice_walk(potential, p_dtype, src, dst, m, k, movable, hashed, batch,
                             plateau, mean, mean_dtype, d, scratch, choice);
    if (rc == OK) {
        /* (a hashed choice along an edge between two images' blocks can lie outside
         * [0, k): then ERR_CHOICE, choice written, labels not) */
        rc = dht_functional_components(choice, k, scratch, labels);
        if (rc < 0) rc = ERR_CHOICE;
    }
    free(scratch);
    return rc;
}

/* snap_constant_blocks's mask: constant[j * d + c] = 1 iff every item i of block j
 * (labels[i] == j) has mean[i, c] == mean[first item of j, c] and var[i, c] == 0 (var
 * NULL: all zero). Blocks without items: 1 (as the tensor implementation's zero count).
 * Returns ERR_INDEX for a label outside [0, k_new), ERR_MEMORY without scratch. */
static int64_t constant_channels(const int64_t *labels, int64_t k, int64_t k_new,
                                 const void *mean, const void *var, int64_t dtype, int64_t d,
                                 int64_t *first, uint8_t *constant);

int64_t dht_constant_channels(const int64_t *labels, int64_t k, int64_t k_new,
                              const void *mean, const void *var, int64_t dtype, int64_t d,
                              uint8_t *constant) {
    int64_t *first = (int64_t *)malloc((size_t)(k_new > 0 ? k_new : 1) * sizeof(int64_t));
    if (!first) return ERR_MEMORY;
    int64_t rc = constant_channels(labels, k, k_new, mean, var, dtype, d, first, constant);
    free(first);
    return rc;
}

static int64_t constant_channels(const int64_t *labels, int64_t k, int64_t k_new,
                                 const void *mean, const void *var, int64_t dtype, int64_t d,
                                 int64_t *first, uint8_t *constant) {
    for (int64_t j = 0; j < k_new; ++j) first[j] = -1;
    if (k_new > 0 && d > 0) memset(constant, 1, (size_t)k_new * (size_t)d); /* may be NULL */
    for (int64_t i = 0; i < k; ++i) {
        int64_t j = labels[i];
        if (j < 0 || j >= k_new) return ERR_INDEX;
        if (first[j] < 0) first[j] = i;
        int64_t r = first[j];
        uint8_t *out = constant + j * d;
        if (dtype == DT_F32) {
            const float *a = (const float *)mean + i * d, *b = (const float *)mean + r * d;
            const float *s = var ? (const float *)var + i * d : 0;
            for (int64_t c = 0; c < d; ++c)
                if (!(a[c] == b[c]) || (s && s[c] != 0.0f)) out[c] = 0;
        } else {
            const double *a = (const double *)mean + i * d, *b = (const double *)mean + r * d;
            const double *s = var ? (const double *)var + i * d : 0;
            for (int64_t c = 0; c < d; ++c)
                if (!(a[c] == b[c]) || (s && s[c] != 0.0)) out[c] = 0;
        }
    }
    return OK;
}

/* _pool_blocks's integer statistics of k items in k_new blocks: new_size (sum of size),
 * new_bbox (k_new x 4: min of the first two columns, max of the last two) and new_batch
 * (the image of the block's last item, as torch's CPU scatter_ writes it; the items of a
 * block share their image). Branch-free: the boxes start from the neutral INT64_MAX /
 * INT64_MIN, every item takes a min / max (a test of the block's first item mispredicted
 * about once per new block). Sizes add modulo 2^64, as torch's index_add_ (no signed
 * overflow). A block without items keeps size 0, box and batch unset.
 * Returns ERR_INDEX for a label outside [0, k_new). */
int64_t dht_pool_integers(const int64_t *labels, int64_t k, int64_t k_new,
                          const int64_t *size, const int64_t *bbox, const int64_t *batch,
                          int64_t *new_size, int64_t *new_bbox, int64_t *new_batch) {
    for (int64_t j = 0; j < k_new; ++j) {
        int64_t *out = new_bbox + 4 * j;
        new_size[j] = 0;
        out[0] = out[1] = INT64_MAX;
        out[2] = out[3] = INT64_MIN;
    }
    for (int64_t i = 0; i < k; ++i) {
        int64_t j = labels[i];
        if (j < 0 || j >= k_new) return ERR_INDEX;
        const int64_t *box = bbox + 4 * i;
        int64_t *out = new_bbox + 4 * j;
        new_size[j] = (int64_t)((uint64_t)new_size[j] + (uint64_t)size[i]); /* wraps */
        out[0] = box[0] < out[0] ? box[0] : out[0];
        out[1] = box[1] < out[1] ? box[1] : out[1];
        out[2] = box[2] > out[2] ? box[2] : out[2];
        out[3] = box[3] > out[3] ? box[3] : out[3];
        new_batch[j] = batch[i];
    }
    return OK;
}

/* weighted_moments (and snap_constant_blocks) of k items in k_new blocks, without
 * gradient, in the operation order and dtype T of the tensor code:
 *   total[j]  = 0 + w[i] + w[i'] + ...           (index_add: items in index order)
 *   fallback: w'[i] = total[labels[i]] > 0 ? w[i] : fallback[i], totals again from w'
 *   mean'[j]  = (0 + w[i]*mean[i] + ...) / total[j]
 *   var'[j]   = (0 + w[i]*(var[i] + (mean[i] - mean'[j])^2) + ...) / total[j]
 *               (var NULL: w[i]*((mean[i] - mean'[j])^2); the square is one product,
 *               as torch's pow(2))
 *   snap: var'[j, c] = +0 where every item's mean equals the block's first item's (by ==)
 *         and every item's var is 0 in channel c (snap_constant_blocks);
 *   movable (k bytes, or NULL): a block whose last item is frozen (movable 0) takes that
 *         item's mean and var (contract's restore: a scatter of ~movable and of the item
 *         indices, the last write winning; a frozen block is alone in its new block).
 * torch's CPU index_add accumulates every output row over the items sequentially in
 * index order (the 1-d loop, and scatter_add along dim 0 for rows, whose
 * expanded-index path sorts stably); every other step is one IEEE operation per element
 * (+, -, *, / correctly rounded; compiled with -ffp-contract=off: no fused multiply-add),
 * so the results are the same bits (NaN payloads aside: which operand's NaN an
 * operation returns is the compiler's choice). Items are read through element strides
 * (mean, var: row and column; weight, fallback: one, 0 for an expanded tensor); weight
 * and fallback are of type T or int64 (w_int, f_int: sizes, converted to T exactly: an
 * |integer| above 2^24 (float) or 2^53 (double) returns ERR_CAST, for the caller to
 * convert). The outputs are contiguous k_new x d. Returns ERR_INDEX for a label outside
 * [0, k_new), ERR_MEMORY without scratch. */
#define ERR_CAST (-4)
#define DHT_MOMENTS(T, NAME, EXACT)                                                          \
static inline T NAME##_at(const void *p, int64_t is_int, int64_t i) {                        \
    return is_int ? (T)((const int64_t *)p)[i] : ((const T *)p)[i];                          \
}                                                                                            \
/* (the loops are branch-free where the data decide: a block's first item, the fallback      \
 * and the snap test are selects, not jumps) */                                              \
static inline __attribute__((always_inline)) int64_t NAME##_body(                            \
                    const int64_t *labels, int64_t k, int64_t k_new, int64_t d,              \
                    const T *mean, int64_t ms0, int64_t ms1, const T *var, int64_t vs0,      \
                    int64_t vs1, const void *weight, int64_t ws, int64_t w_int,              \
                    const void *fallback, int64_t fs, int64_t f_int, int64_t snap,           \
                    const uint8_t *movable, T *new_mean, T *new_var, T *total, T *wt,        \
                    int64_t *first, int64_t *last, uint8_t *constant) {                      \
    const int64_t exact = (int64_t)1 << EXACT;                                               \
    if (w_int)                                                                               \
        for (int64_t i = 0; i < k; ++i) {                                                    \
            int64_t v = ((const int64_t *)weight)[i * ws];                                   \
            if (v > exact || v < -exact) return ERR_CAST;                                    \
        }                                                                                    \
    if (fallback && f_int)                                                                   \
        for (int64_t i = 0; i < k; ++i) {                                                    \
            int64_t v = ((const int64_t *)fallback)[i * fs];                                 \
            if (v > exact || v < -exact) return ERR_CAST;                                    \
        }                                                                                    \
    for (int64_t i = 0; i < k; ++i)                                                          \
        if (labels[i] < 0 || labels[i] >= k_new) return ERR_INDEX;                           \
    for (int64_t j = 0; j < k_new; ++j) { total[j] = 0; first[j] = k; }                      \
    for (int64_t q = 0; q < k_new * d; ++q) { new_mean[q] = 0; new_var[q] = 0; }             \
    for (int64_t i = 0; i < k; ++i) {                                                        \
        const int64_t j = labels[i];                                                         \
        first[j] = first[j] < i ? first[j] : i;                                              \
        last[j] = i;                                                                         \
        wt[i] = NAME##_at(weight, w_int, i * ws);                                            \
        total[j] += wt[i];                                                                   \
    }                                                                                        \
    if (fallback) {                                                                          \
        for (int64_t i = 0; i < k; ++i) {                                                    \
            const T w = wt[i], f = NAME##_at(fallback, f_int, i * fs);                       \
            wt[i] = total[labels[i]] > 0 ? w : f;                                            \
        }                                                                                    \
        for (int64_t j = 0; j < k_new; ++j) total[j] = 0;                                    \
        for (int64_t i = 0; i < k; ++i) total[labels[i]] += wt[i];                           \
    }                                                                                        \
    for (int64_t i = 0; i < k; ++i) {                                                        \
        const T wi = wt[i], *a = mean + i * ms0;                                             \
        T *out = new_mean + labels[i] * d;                                                   \
        for (int64_t c = 0; c < d; ++c) out[c] += wi * a[c * ms1];                           \
    }                                                                                        \
    for (int64_t j = 0; j < k_new; ++j) {                                                    \
        const T t = total[j];                                                                \
        for (int64_t c = 0; c < d; ++c) new_mean[j * d + c] = new_mean[j * d + c] / t;       \
    }                                                                                        \
    if (snap && k_new > 0 && d > 0) memset(constant, 1, (size_t)k_new * (size_t)d);          \
    for (int64_t i = 0; i < k; ++i) {                                                        \
        const T wi = wt[i];                                                                  \
        const int64_t j = labels[i];                                                         \
        const T *a = mean + i * ms0, *mu = new_mean + j * d, *r = mean + first[j] * ms0;     \
        T *out = new_var + j * d;                                                            \
        uint8_t *same = constant + j * d;                                                    \
        if (var) {                                                                           \
            const T *s = var + i * vs0;                                                      \
            for (int64_t c = 0; c < d; ++c) {                                                \
                const T x = a[c * ms1], sc = s[c * vs1], diff = x - mu[c];                   \
                const T spread = diff * diff;                                                \
                out[c] += wi * (sc + spread);                                                \
                if (snap) same[c] &= (uint8_t)((x == r[c * ms1]) & (sc == 0));               \
            }                                                                                \
        } else {                                                                             \
            for (int64_t c = 0; c < d; ++c) {                                                \
                const T x = a[c * ms1], diff = x - mu[c];                                    \
                out[c] += wi * (diff * diff);                                                \
                if (snap) same[c] &= (uint8_t)(x == r[c * ms1]);                             \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    for (int64_t j = 0; j < k_new; ++j) {                                                    \
        const T t = total[j];                                                                \
        T *mu = new_mean + j * d, *out = new_var + j * d;                                    \
        for (int64_t c = 0; c < d; ++c)                                                      \
            out[c] = (snap && constant[j * d + c]) ? (T)0 : out[c] / t;                      \
        if (movable && first[j] < k && !movable[last[j]]) {                                  \
            const T *a = mean + last[j] * ms0, *s = var ? var + last[j] * vs0 : 0;           \
            for (int64_t c = 0; c < d; ++c) {                                                \
                mu[c] = a[c * ms1];                                                          \
                out[c] = s ? s[c * vs1] : (T)0;                                              \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    return OK;                                                                               \
}                                                                                            \
static int64_t NAME(const int64_t *labels, int64_t k, int64_t k_new, int64_t d,              \
                    const T *mean, int64_t ms0, int64_t ms1, const T *var, int64_t vs0,      \
                    int64_t vs1, const void *weight, int64_t ws, int64_t w_int,              \
                    const void *fallback, int64_t fs, int64_t f_int, int64_t snap,           \
                    const uint8_t *movable, T *new_mean, T *new_var, T *total, T *wt,        \
                    int64_t *first, int64_t *last, uint8_t *constant) {                      \
    /* the body specialised for three channels (colour features) */                          \
    if (d == 3)                                                                              \
        return NAME##_body(labels, k, k_new, 3, mean, ms0, ms1, var, vs0, vs1, weight, ws,   \
                           w_int, fallback, fs, f_int, snap, movable, new_mean, new_var,     \
                           total, wt, first, last, constant);                                \
    return NAME##_body(labels, k, k_new, d, mean, ms0, ms1, var, vs0, vs1, weight, ws,       \
                       w_int, fallback, fs, f_int, snap, movable, new_mean, new_var, total,  \
                       wt, first, last, constant);                                           \
}

DHT_MOMENTS(float, moments_f32, 24)
DHT_MOMENTS(double, moments_f64, 53)

int64_t dht_weighted_moments(const int64_t *labels, int64_t k, int64_t k_new, int64_t d,
                             int64_t dtype, const void *mean, int64_t ms0, int64_t ms1,
                             const void *var, int64_t vs0, int64_t vs1, const void *weight,
                             int64_t ws, int64_t w_int, const void *fallback, int64_t fs,
                             int64_t f_int, int64_t snap, const uint8_t *movable,
                             void *new_mean, void *new_var) {
    size_t item = dtype == DT_F32 ? sizeof(float) : sizeof(double);
    size_t kn = (size_t)(k_new > 0 ? k_new : 1), kk = (size_t)(k > 0 ? k : 1);
    /* first, last (int64, k_new each) | total (T, k_new) | wt (T, k) | constant (bytes) */
    size_t bytes = 2 * kn * sizeof(int64_t) + kn * item + kk * item
                   + (snap ? kn * (size_t)(d > 0 ? d : 1) : 0);
    char *scratch = (char *)malloc(bytes);
    if (!scratch) return ERR_MEMORY;
    int64_t *first = (int64_t *)scratch, *last = first + kn;
    void *total = scratch + 2 * kn * sizeof(int64_t);
    void *wt = (char *)total + kn * item;
    uint8_t *constant = (uint8_t *)((char *)wt + kk * item);
    int64_t rc;
    if (dtype == DT_F32)
        rc = moments_f32(labels, k, k_new, d, (const float *)mean, ms0, ms1,
                         (const float *)var, vs0, vs1, weight, ws, w_int, fallback, fs, f_int,
                         snap, movable, (float *)new_mean, (float *)new_var, (float *)total,
                         (float *)wt, first, last, constant);
    else
        rc = moments_f64(labels, k, k_new, d, (const double *)mean, ms0, ms1,
                         (const double *)var, vs0, vs1, weight, ws, w_int, fallback, fs, f_int,
                         snap, movable, (double *)new_mean, (double *)new_var, (double *)total,
                         (double *)wt, first, last, constant);
    free(scratch);
    return rc;
}

/* dht_weighted_moments, then dht_pool_integers of the same labels, in one call
 * (contract's pooling): the arguments of both in order (labels .. new_var, then size,
 * bbox, batch and their outputs). Returns the first error code (ERR_CAST: the moments
 * need the caller's conversion, nothing of the integers is written). */
int64_t dht_pool_level(const int64_t *labels, int64_t k, int64_t k_new, int64_t d,
                       int64_t dtype, const void *mean, int64_t ms0, int64_t ms1,
                       const void *var, int64_t vs0, int64_t vs1, const void *weight,
                       int64_t ws, int64_t w_int, const void *fallback, int64_t fs,
                       int64_t f_int, int64_t snap, const uint8_t *movable, void *new_mean,
                       void *new_var, const int64_t *size, const int64_t *bbox,
                       const int64_t *batch, int64_t *new_size, int64_t *new_bbox,
                       int64_t *new_batch) {
    int64_t rc = dht_weighted_moments(labels, k, k_new, d, dtype, mean, ms0, ms1, var, vs0,
                                      vs1, weight, ws, w_int, fallback, fs, f_int, snap,
                                      movable, new_mean, new_var);
    if (rc != OK) return rc;
    return dht_pool_integers(labels, k, k_new, size, bbox, batch, new_size, new_bbox,
                             new_batch);
}

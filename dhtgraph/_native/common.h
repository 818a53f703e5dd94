/* Shared static inline helpers of the kernel sets (included by <set>.c; the loader
 * hashes every *.h beside the sources into the library name, so a change here rebuilds
 * every set). Nothing here has external linkage: each set gets its own copy.
 *
 * - dht_mix32 / dht_mix64 / dht_pair_hash: dhtgraph.hierarchy.contraction's _mix32_ and
 *   tie_hash, bit for bit;
 * - dht_quantize_f32 / dht_quantize_f64: quantize_potential of one float32 / float64;
 * - dht_unite / dht_number_roots: Rem's union-find on pointers that never point up
 *   (parent[v] <= v: every root is the smallest node of its set) and the canonical
 *   labels it gives; dht_functional_components: both on v -> choice[v], range-checked. */
#ifndef DHTGRAPH_NATIVE_COMMON_H
#define DHTGRAPH_NATIVE_COMMON_H

#include <stdint.h>

/* ------------------------------------------------------------------ tie hash */

/* TIE_HASH_BITS of dhtgraph.hierarchy.contraction. */
#define DHT_TIE_HASH_BITS 15

/* _mix32_ of a value already in [0, 2^32): the "lowbias32" finaliser, uint32 arithmetic
 * (the tensor version computes the same values mod 2^32 in int64). */
static inline uint32_t dht_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= UINT32_C(0x7FEB352D);
    x ^= x >> 15;
    x *= UINT32_C(0x846CA68B);
    x ^= x >> 16;
    return x;
}

/* _mix32_ of any int64, as the tensor code computes it: its first step x ^ (x >> 16) is
 * an int64 (arithmetic) shift and everything after the first product is reduced mod 2^32,
 * so only the low 32 bits of x ^ (x >> 16) matter. */
static inline uint32_t dht_mix64(int64_t x) {
    uint32_t y = (uint32_t)((uint64_t)x ^ (uint64_t)(x >> 16));
    y *= UINT32_C(0x7FEB352D);
    y ^= y >> 15;
    y *= UINT32_C(0x846CA68B);
    y ^= y >> 16;
    return y;
}

/* tie_hash(a, b) of any int64 pair, bit for bit as the tensor code (the documented domain
 * is [0, 2^31)): mix(min) + max reduced mod 2^32, mixed again, top DHT_TIE_HASH_BITS. */
static inline int64_t dht_pair_hash(int64_t a, int64_t b) {
    int64_t lo = a < b ? a : b, hi = a < b ? b : a;
    uint32_t h = dht_mix64(lo) + (uint32_t)(uint64_t)hi;
    return (int64_t)(dht_mix32(h) >> (32 - DHT_TIE_HASH_BITS));
}

/* ------------------------------------------------------------------ quantisation */

/* quantize_potential: nan_to_num(nan=0) (+-inf become +-max, clipped as +-inf would be),
 * clamp(0, 1), * 65535 in the potential's own type (one correctly rounded product, as
 * torch's; float32 checked on all 2^32 bit patterns), truncation. Branch-free: NaN fails
 * both comparisons and becomes 0. */
static inline int64_t dht_quantize_f32(float x) {
    x = x > 1.0f ? 1.0f : x;
    x = x > 0.0f ? x : 0.0f;
    return (int64_t)(x * 65535.0f);
}

static inline int64_t dht_quantize_f64(double x) {
    x = x > 1.0 ? 1.0 : x;
    x = x > 0.0 ? x : 0.0;
    return (int64_t)(x * 65535.0);
}

/* ------------------------------------------------------------------ union-find */

/* Join the sets of x and y (Rem's algorithm): walk both paths up, always from the node
 * with the larger parent, splicing its pointer onto the other's parent (smaller), until
 * the two meet or a root is linked under the other side. Keeps parent[v] <= v. */
static inline void dht_unite(int64_t *restrict parent, int64_t x, int64_t y) {
    while (parent[x] != parent[y]) {
        if (parent[x] < parent[y]) { /* x: the side with the larger parent */
            int64_t t = x;
            x = y;
            y = t;
        }
        if (parent[x] == x) {
            parent[x] = parent[y];
            return;
        }
        int64_t z = parent[x];
        parent[x] = parent[y];
        x = z;
    }
}

/* Canonical labels from a union-find forest with parent[v] <= v, in node order (a root
 * gets the next label, any other node its root's: components numbered by their smallest
 * node); v's parent p < v already points at its root (resolved earlier in this pass).
 * Returns the number of components. */
static inline int64_t dht_number_roots(int64_t *restrict parent, int64_t n,
                                       int64_t *restrict labels) {
    int64_t k = 0;
    for (int64_t v = 0; v < n; ++v) {
        int64_t p = parent[v];
        if (p == v) {
            labels[v] = k++;
        } else {
            int64_t root = parent[p];
            parent[v] = root;
            labels[v] = labels[root];
        }
    }
    return k;
}

/* Canonical components of the functional graph v -> choice[v] on n nodes: -1, nothing
 * written, when a choice lies outside [0, n); else parent (n, scratch) holds the
 * union-find forest, labels (n) the labels, and their number is returned. */
static inline int64_t dht_functional_components(const int64_t *restrict choice, int64_t n,
                                                int64_t *restrict parent,
                                                int64_t *restrict labels) {
    for (int64_t v = 0; v < n; ++v)
        if (choice[v] < 0 || choice[v] >= n) return -1;
    for (int64_t v = 0; v < n; ++v) parent[v] = v;
    for (int64_t v = 0; v < n; ++v) dht_unite(parent, v, choice[v]);
    return dht_number_roots(parent, n, labels);
}

#endif

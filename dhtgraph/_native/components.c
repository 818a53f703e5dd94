/* Connected components with canonical labels (dhtgraph._union's native path).
 *
 * Rem's union-find with splicing on pointers that never point up: parent[v] <= v
 * throughout, so every root is the smallest node of its set. Labels are then given in
 * node order (a root gets the next label, any other node its root's), which numbers the
 * components by their smallest node: the canonical labels of the tensor implementation,
 * exactly. (Measured on a 224^2 and a 1024^2 grid level: Rem's takes 0.75x the time of
 * union-by-index with path halving, and 0.3x-0.65x a walk along a functional graph's
 * choices: fewer dependent loads.)
 *
 * Every kernel checks its indices first and returns -1, writing nothing further, when
 * one is out of range (the caller then takes the tensor path, which raises). No globals:
 * the kernels are re-entrant. */
#include <stdint.h>

#include "common.h" /* dht_unite, dht_number_roots, dht_functional_components */


static int in_range(const int64_t *index, int64_t m, int64_t n) {
    for (int64_t e = 0; e < m; ++e)
        if (index[e] < 0 || index[e] >= n) return 0;
    return 1;
}

/* Components of the functional graph v -> choice[v] (n nodes); `parent` is scratch (n).
 * Returns the number of components; labels (n) receives them. */
int64_t dht_choice_components(const int64_t *choice, int64_t n, int64_t *parent,
                              int64_t *labels) {
    return dht_functional_components(choice, n, parent, labels);
}

/* Components of the undirected graph with edges (src[e], dst[e]), e < m, on n nodes. */
int64_t dht_edge_components(const int64_t *src, const int64_t *dst, int64_t m, int64_t n,
                            int64_t *parent, int64_t *labels) {
    if (!in_range(src, m, n) || !in_range(dst, m, n)) return -1;
    for (int64_t v = 0; v < n; ++v) parent[v] = v;
    for (int64_t e = 0; e < m; ++e) dht_unite(parent, src[e], dst[e]);
    return dht_number_roots(parent, n, labels);
}

/* Components of the min-forest v -> forest[v] (forest[v] <= v, roots point at
 * themselves) and the edges (low[e], high[e]), e < m (either order), on n nodes.
 * `parent` (n) is scratch: it starts as the forest (already a union-find forest whose
 * pointers never point up), then the edges unite. */
int64_t dht_forest_components(const int64_t *forest, int64_t n, const int64_t *low,
                              const int64_t *high, int64_t m, int64_t *parent,
                              int64_t *labels) {
    for (int64_t v = 0; v < n; ++v)
        if (forest[v] < 0 || forest[v] > v) return -1;
    if (!in_range(low, m, n) || !in_range(high, m, n)) return -1;
    for (int64_t v = 0; v < n; ++v) parent[v] = forest[v];
    for (int64_t e = 0; e < m; ++e) dht_unite(parent, low[e], high[e]);
    return dht_number_roots(parent, n, labels);
}

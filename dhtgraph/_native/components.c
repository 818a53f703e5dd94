/* Connected components with canonical labels (dhtgraph._union's native path).
 *
 * Union-find in which the larger root always goes under the smaller one, so every root
 * is the smallest node of its set; labels are then given in node order (a root gets the
 * next label, any other node its root's), which numbers the components by their
 * smallest node: the canonical labels of the tensor implementation, exactly. */
#include <stdint.h>

static int64_t find_root(int64_t *parent, int64_t v) {
    while (parent[v] != v) {
        parent[v] = parent[parent[v]]; /* path halving */
        v = parent[v];
    }
    return v;
}

static void unite(int64_t *parent, int64_t a, int64_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

static int64_t number_roots(int64_t *parent, int64_t n, int64_t *labels) {
    int64_t k = 0;
    for (int64_t v = 0; v < n; ++v) {
        int64_t r = find_root(parent, v);
        labels[v] = (r == v) ? k++ : labels[r];
    }
    return k;
}

/* Components of the functional graph v -> choice[v] (n nodes); `parent` is scratch (n).
 * Returns the number of components; labels (n) receives them. */
int64_t dht_choice_components(const int64_t *choice, int64_t n, int64_t *parent,
                              int64_t *labels) {
    for (int64_t v = 0; v < n; ++v) parent[v] = v;
    for (int64_t v = 0; v < n; ++v) unite(parent, v, choice[v]);
    return number_roots(parent, n, labels);
}

/* Components of the undirected graph with edges (src[e], dst[e]), e < m, on n nodes. */
int64_t dht_edge_components(const int64_t *src, const int64_t *dst, int64_t m, int64_t n,
                            int64_t *parent, int64_t *labels) {
    for (int64_t v = 0; v < n; ++v) parent[v] = v;
    for (int64_t e = 0; e < m; ++e) unite(parent, src[e], dst[e]);
    return number_roots(parent, n, labels);
}

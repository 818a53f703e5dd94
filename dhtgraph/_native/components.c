/* Connected components with canonical labels (dhtgraph._union's native path).
 *
 * Union-find in which the larger root always goes under the smaller one, so every root
 * is the smallest node of its set; labels are then given in node order (a root gets the
 * next label, any other node its root's), which numbers the components by their
 * smallest node: the canonical labels of the tensor implementation, exactly.
 *
 * Every kernel checks its indices first and returns -1, writing nothing further, when
 * one is out of range (the caller then takes the tensor path, which raises). No globals:
 * the kernels are re-entrant. */
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

static int in_range(const int64_t *index, int64_t m, int64_t n) {
    for (int64_t e = 0; e < m; ++e)
        if (index[e] < 0 || index[e] >= n) return 0;
    return 1;
}

/* Components of the functional graph v -> choice[v] (n nodes). Returns the number of
 * components; labels (n) receives them.
 *
 * No union-find: every node has one out-edge, so the walk v, choice[v], ... from the
 * smallest unlabelled node v either reaches a labelled node (v joins its component) or
 * closes a cycle of nodes met on this walk: a new component, whose smallest node is v
 * (every smaller node is labelled, and no node of the new component was labelled
 * before), so numbering components as they are found is numbering them by their
 * smallest node. The walk's nodes carry the mark -2 until they get the label; every
 * node is walked once. */
int64_t dht_choice_components(const int64_t *choice, int64_t n, int64_t *labels) {
    if (!in_range(choice, n, n)) return -1;
    for (int64_t v = 0; v < n; ++v) labels[v] = -1;
    int64_t k = 0;
    for (int64_t v = 0; v < n; ++v) {
        if (labels[v] >= 0) continue;
        int64_t u = v;
        while (labels[u] == -1) {
            labels[u] = -2;
            u = choice[u];
        }
        int64_t label = labels[u] == -2 ? k++ : labels[u];
        for (u = v; labels[u] == -2; u = choice[u]) labels[u] = label;
    }
    return k;
}

/* Components of the undirected graph with edges (src[e], dst[e]), e < m, on n nodes. */
int64_t dht_edge_components(const int64_t *src, const int64_t *dst, int64_t m, int64_t n,
                            int64_t *parent, int64_t *labels) {
    if (!in_range(src, m, n) || !in_range(dst, m, n)) return -1;
    for (int64_t v = 0; v < n; ++v) parent[v] = v;
    for (int64_t e = 0; e < m; ++e) unite(parent, src[e], dst[e]);
    return number_roots(parent, n, labels);
}

/* Components of the min-forest v -> forest[v] (forest[v] <= v, roots point at
 * themselves) and the edges (low[e], high[e]), e < m (either order), on n nodes.
 * `parent` (n) is scratch: it starts as the forest with every pointer resolved to its
 * root (one pass in node order), then the edges unite. */
int64_t dht_forest_components(const int64_t *forest, int64_t n, const int64_t *low,
                              const int64_t *high, int64_t m, int64_t *parent,
                              int64_t *labels) {
    for (int64_t v = 0; v < n; ++v)
        if (forest[v] < 0 || forest[v] > v) return -1;
    if (!in_range(low, m, n) || !in_range(high, m, n)) return -1;
    /* The forest's roots in one pass (forest[v] <= v: v's pointer is resolved first). */
    for (int64_t v = 0; v < n; ++v) parent[v] = forest[v] == v ? v : parent[forest[v]];
    for (int64_t e = 0; e < m; ++e) unite(parent, low[e], high[e]);
    return number_roots(parent, n, labels);
}

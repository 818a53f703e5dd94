/* The per-level fixed cost of a hierarchy build and of the information criterion.
 *
 * dht_levels_start / dht_levels_step: build_hierarchy's bookkeeping of which graphs go
 * on (dhtgraph.hierarchy.build._first_active / _next_active), for the B graphs of a batch
 * in one pass each instead of ~20 tiny tensor ops and a host read per level:
 *   levels += active; new counts = blocks per graph (bincount of batch);
 *   now_stalled = active & ((double)(counts - new) < (double)((float)counts * fraction))
 *     (the tensor code's MIN_MERGED_FRACTION * counts is a float32 product of the count
 *     rounded to float32 and the fraction rounded to float32, compared in double);
 *   stalled |= now_stalled;
 *   next = active & (new > min_blocks) & improved & ~now_stalled & (level_cap > level).
 * Both return whether any (bit 0) and whether every (bit 1) graph is active next.
 *
 * dht_information_criterion: the elementwise end of information_criterion,
 *   -(((float)size / (float)num_pixels) * logdet + P(size)), -inf where size <= 1,
 * float32 throughout in torch's order (one rounding per operation; the library is built
 * with -ffp-contract=off: no fused multiply-add), P read from the penalty table or given.
 * log and the product over channels (logdet) stay in torch.
 *
 * Re-entrant (no globals); every index is checked first (an error code, never a write out
 * of bounds). Bool tensors are read and written as bytes 0/1. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

enum { ERR_INDEX = -1, ERR_TABLE = -2 };

/* Bit 0: some graph active; bit 1: every graph active (torch's any/all: all of none). */
static int64_t flags(const uint8_t *active, int64_t b) {
    int64_t any = 0, all = 1;
    for (int64_t g = 0; g < b; ++g) {
        any |= active[g];
        all &= active[g];
    }
    return any | (all << 1);
}

/* active (b) = (nodes > min_blocks) & (level_cap > 0). */
int64_t dht_levels_start(int64_t b, const int64_t *nodes, const int64_t *level_cap,
                         int64_t min_blocks, uint8_t *active) {
    for (int64_t g = 0; g < b; ++g)
        active[g] = (uint8_t)(nodes[g] > min_blocks && level_cap[g] > 0);
    return flags(active, b);
}

/* One level's update of b graphs whose k blocks lie in graphs batch (k). `improved` (b)
 * may be NULL (every graph improved). Writes new_counts (b) and next_active (b), updates
 * levels and stalled (b) in place. Returns the flags, or ERR_INDEX when a batch entry is
 * outside [0, b) (then only new_counts, scratch, has been written). */
int64_t dht_levels_step(int64_t b, const int64_t *batch, int64_t k, const uint8_t *active,
                        const int64_t *counts, const uint8_t *improved,
                        const int64_t *level_cap, int64_t min_blocks, int64_t level,
                        float fraction, int64_t *new_counts, int64_t *levels,
                        uint8_t *stalled, uint8_t *next_active) {
    for (int64_t g = 0; g < b; ++g) new_counts[g] = 0;
    for (int64_t i = 0; i < k; ++i) {
        int64_t g = batch[i];
        if (g < 0 || g >= b) return ERR_INDEX;
        new_counts[g] += 1;
    }
    for (int64_t g = 0; g < b; ++g) {
        int64_t was = counts[g], now = new_counts[g];
        int on = active[g] != 0;
        int now_stalled = on && (double)(was - now) < (double)((float)was * fraction);
        levels[g] += on;
        stalled[g] = (uint8_t)(stalled[g] | now_stalled);
        next_active[g] = (uint8_t)(on && now > min_blocks && (improved == NULL || improved[g])
                                   && !now_stalled && level_cap[g] > level);
    }
    return flags(next_active, b);
}

/* out (k) = -((size / num_pixels) * logdet + P), -inf where size <= 1, float32; the
 * divisor is num_pixels[i] when num_pixels is given, else `pixels`. P is table[size[i]]
 * when `table` is given (ERR_TABLE, nothing written, when a size is outside
 * [0, table_length)), else penalty[i]. */
int64_t dht_information_criterion(int64_t k, const int64_t *size, const float *logdet,
                                  int64_t pixels, const int64_t *num_pixels,
                                  const float *table, int64_t table_length,
                                  const float *penalty, float *out) {
    if (table != NULL)
        for (int64_t i = 0; i < k; ++i)
            if (size[i] < 0 || size[i] >= table_length) return ERR_TABLE;
    const float pixels_f = (float)pixels;
    for (int64_t i = 0; i < k; ++i) {
        int64_t m = size[i];
        float divisor = num_pixels != NULL ? (float)num_pixels[i] : pixels_f;
        float fit = ((float)m / divisor) * logdet[i];
        float p = table != NULL ? table[m] : penalty[i];
        float ic = -(fit + p);
        out[i] = m <= 1 ? -INFINITY : ic;
    }
    return 0;
}

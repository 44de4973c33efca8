/* sample.c - temperature and top-k sampling over one row of logits. The k-th largest
 * logit is found by selection in caller scratch (no sort, no allocation); ties at the
 * threshold are all kept. */
#include "et_sample.h"
#include "et_math.h"

/* k-th largest (1-based) of x[0..n) by quickselect; reorders x. */
static float kth_largest(float *x, int n, int k)
{
    int lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        float pivot = x[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (x[i] > pivot) i++;
            while (x[j] < pivot) j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                j--;
            }
        }
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else break;
    }
    return x[target];
}

et_status et_sample_token(const float *logits, int V, float temperature, int top_k,
                          float *scratch, et_rng *rng, int *out)
{
    float mx, thr, sum = 0.0f, u, acc = 0.0f;
    int i, last = -1;
    if (!logits || V <= 0 || !scratch || !rng || !out || !(temperature >= 0.0f) || top_k < 0)
        return ET_ERR_INVALID;
    mx = logits[0];
    *out = 0;
    for (i = 1; i < V; i++)
        if (logits[i] > mx) { mx = logits[i]; *out = i; }
    if (temperature == 0.0f) return ET_OK;
    thr = -3.0e38f;
    if (top_k > 0 && top_k < V) {
        for (i = 0; i < V; i++) scratch[i] = logits[i];
        thr = kth_largest(scratch, V, top_k);
    }
    for (i = 0; i < V; i++) {
        scratch[i] = logits[i] >= thr ? et_expf((logits[i] - mx) / temperature) : 0.0f;
        sum += scratch[i];
    }
    u = et_rng_uniform(rng) * sum;
    for (i = 0; i < V; i++) {
        if (scratch[i] <= 0.0f) continue;
        acc += scratch[i];
        last = i;
        if (u < acc) break;
    }
    *out = last >= 0 ? last : *out;
    return ET_OK;
}

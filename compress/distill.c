/* distill.c - the distillation loss and its logits gradient (et_distill.h). One row at a
 * time: three log-softmaxes (student at tau, teacher at tau, student at 1), each as
 * z - max - log(sum exp(z - max)), so nothing overflows. */
#include "et_distill.h"
#include "et_math.h"

/* log-softmax of z / tau over V entries into out; returns nothing, out(V) */
static void log_softmax(const float *z, int V, float tau, float *out)
{
    float mx = -3.0e38f, sum = 0.0f, lse;
    int j;
    for (j = 0; j < V; j++)
        if (z[j] / tau > mx) mx = z[j] / tau;
    for (j = 0; j < V; j++) sum += et_expf(z[j] / tau - mx);
    lse = mx + et_logf(sum);
    for (j = 0; j < V; j++) out[j] = z[j] / tau - lse;
}

#define VMAX 4096 /* rows are processed on the stack in chunks of this many columns */

et_status et_distill_loss(const float *s, const float *t, const int *y, int N, int V, int Vp,
                          float alpha, float tau, float scale, float *dlogits, float *loss)
{
    float ls_t[VMAX], lt_t[VMAX], ls_1[VMAX];
    double total = 0.0;
    int n, j;
    if (!s || !t || !y || N < 0 || V <= 0 || V > Vp || V > VMAX) return ET_ERR_INVALID;
    if (!(alpha >= 0.0f && alpha <= 1.0f) || !(tau > 0.0f)) return ET_ERR_INVALID;
    for (n = 0; n < N; n++)
        if (y[n] < 0 || y[n] >= V) return ET_ERR_RANGE;
    for (n = 0; n < N; n++) {
        const float *sn = s + (size_t)n * Vp, *tn = t + (size_t)n * Vp;
        double kl = 0.0;
        log_softmax(sn, V, tau, ls_t);
        log_softmax(tn, V, tau, lt_t);
        log_softmax(sn, V, 1.0f, ls_1);
        for (j = 0; j < V; j++) kl += (double)et_expf(lt_t[j]) * (double)(lt_t[j] - ls_t[j]);
        total += alpha * (double)tau * tau * kl - (1.0 - alpha) * (double)ls_1[y[n]];
        if (dlogits) {
            float *d = dlogits + (size_t)n * Vp, k = scale / (float)N;
            for (j = 0; j < V; j++) {
                float g = alpha * tau * (et_expf(ls_t[j]) - et_expf(lt_t[j])) +
                          (1.0f - alpha) * (et_expf(ls_1[j]) - (j == y[n] ? 1.0f : 0.0f));
                d[j] += k * g;
            }
        }
    }
    if (loss) *loss = N ? (float)(total / N) : 0.0f;
    return ET_OK;
}

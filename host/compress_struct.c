/* compress_struct.c - structured pruning on the host (`compress --prune heads=N`,
 * `ffn=F`, `neurons=S`): parse the request, score heads and neurons (calibration
 * activations read from a training-mode forward, or weight norms), shrink the checkpoint
 * to the kept units (compress/prune_struct.c) and fine-tune the smaller model.
 * Deliberately avoids: a fine-tuning loop of its own (et_compress_prune's, with nothing
 * masked, so a structured run and `--prune 0` share one recipe) and touching the input
 * checkpoint until everything has succeeded.
 */
#include <stdlib.h>
#include <string.h>
#include "et_compress.h"
#include "et_prune_struct.h"
#include "et_qruntime.h"
#include "et_runtime.h"

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int et_struct_spec_probe(const char *s)
{
    return s && (has_prefix(s, "heads=") || has_prefix(s, "ffn=") || has_prefix(s, "neurons="));
}

et_status et_struct_spec_parse(const char *s, et_struct_spec *p, et_error *err)
{
    const char *q = s;
    memset(p, 0, sizeof *p);
    p->calib_batches = 8;
    if (!et_struct_spec_probe(s))
        return et_error_set(err, ET_ERR_INVALID, "--prune '%s' is not a structured request (heads=N, ffn=F or "
                            "neurons=S)", s ? s : "");
    while (*q) {
        char *end;
        if (has_prefix(q, "heads=")) {
            long v = strtol(q + 6, &end, 10);
            if (end == q + 6 || (*end && *end != ',') || v < 1 || v > (1 << 16)) goto bad_count;
            p->heads = (int)v;
        } else if (has_prefix(q, "ffn=")) {
            long v = strtol(q + 4, &end, 10);
            if (end == q + 4 || (*end && *end != ',') || v < 1 || v > (1 << 20)) goto bad_count;
            p->ffn = (int)v;
        } else if (has_prefix(q, "neurons=")) {
            p->neurons = strtof(q + 8, &end);
            if (end == q + 8 || (*end && *end != ','))
                return et_error_set(err, ET_ERR_INVALID, "--prune %s: neurons= takes a share, like 0.5", s);
            if (!(p->neurons >= 0.0f && p->neurons < 1.0f))
                return et_error_set(err, ET_ERR_INVALID, "--prune %s: the share of MLP neurons removed must be in "
                                    "[0, 1)", s);
        } else {
            return et_error_set(err, ET_ERR_INVALID, "--prune %s: unknown part '%s' (want heads=N, ffn=F, "
                                "neurons=S, joined by commas)", s, q);
        }
        q = *end ? end + 1 : end;
    }
    if (p->ffn && p->neurons > 0.0f)
        return et_error_set(err, ET_ERR_INVALID, "--prune %s: give ffn= or neurons=, not both", s);
    p->kind = 1;
    return ET_OK;
bad_count:
    return et_error_set(err, ET_ERR_INVALID, "--prune %s: heads= and ffn= take a count of at least 1 (what each "
                        "layer keeps)", s);
}

/* mean contribution energies over the calibration windows, as floats */
static et_status act_scores(const et_ckpt *c, const et_struct_spec *p, const uint16_t *cal, size_t ncal, int B,
                            int T, int threads, float *hs, float *ns, et_error *err)
{
    size_t nh = (size_t)c->cfg.layers * c->cfg.heads, nn = (size_t)c->cfg.layers * et_gpt_ffn_width(&c->cfg), i,
           pos = 0, tokens = 0;
    double *ha = calloc(nh, sizeof(double)), *na = calloc(nn, sizeof(double));
    int *in = malloc(sizeof(int) * (size_t)B * T), *tg = malloc(sizeof(int) * (size_t)B * T), b;
    et_runtime rt;
    et_status s;
    if (!ha || !na || !in || !tg) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory for pruning scores"); goto out; }
    if (!cal || ncal < (size_t)T + 1) {
        s = et_error_set(err, ET_ERR_TRUNCATED, "the calibration set has %zu tokens; scoring heads and neurons "
                         "needs at least one sequence of %d + 1", cal ? ncal : 0, T);
        goto out;
    }
    if ((s = et_runtime_open(&rt, "cpu", &c->cfg, B, T, ET_GPT_TRAIN, threads, err)) != ET_OK) goto out;
    et_gpt_set_params(&rt.model, c->params);
    for (b = 0; b < p->calib_batches && s == ET_OK; b++) {
        et_fill_windows(cal, ncal, B, T, &pos, in, tg);
        if ((s = et_gpt_forward(&rt.model, in, tg, B, T)) != ET_OK ||
            (s = et_prune_struct_observe(&rt.model, ha, na)) != ET_OK)
            et_error_set(err, s, "scoring batch %d failed: %s", b, et_status_str(s));
        tokens += (size_t)B * T;
    }
    et_runtime_close(&rt);
    for (i = 0; i < nh; i++) hs[i] = (float)(ha[i] / (double)tokens);
    for (i = 0; i < nn; i++) ns[i] = (float)(na[i] / (double)tokens);
out:
    free(ha);
    free(na);
    free(in);
    free(tg);
    return s;
}

static void print_kept(FILE *f, const char *what, const int *idx, int L, int keep, int n)
{
    int l, i;
    if (!f || keep == n) return;
    for (l = 0; l < L; l++) {
        fprintf(f, "layer %d keeps %d of %d %s", l, keep, n, what);
        if (keep <= 16) {
            fprintf(f, ":");
            for (i = 0; i < keep; i++) fprintf(f, " %d", idx[(size_t)l * keep + i]);
        }
        fprintf(f, "\n");
    }
}

et_status et_compress_struct(et_ckpt *c, const et_struct_spec *p, const et_finetune_opts *fo,
                             const uint16_t *cal, size_t ncal, int B, int T, int threads,
                             et_error *err)
{
    et_gpt_config cfg, out;
    et_prune_spec none;
    int L, NH, F, keep_h, keep_f, *hidx = NULL, *nidx = NULL;
    float *hs = NULL, *ns = NULL, *np = NULL;
    uint8_t *mask = NULL;
    size_t nout;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_status s;
    if (!c || !c->params || !p || p->kind != 1 || !fo)
        return et_error_set(err, ET_ERR_INVALID, "no structured pruning asked for");
    cfg = c->cfg;
    if (et_gpt_config_check(&cfg) != ET_OK) return et_error_set(err, ET_ERR_INVALID, "invalid model config");
    L = cfg.layers; NH = cfg.heads; F = et_gpt_ffn_width(&cfg);
    keep_h = p->heads ? p->heads : NH;
    keep_f = p->ffn ? p->ffn : p->neurons > 0.0f ? (int)((1.0 - (double)p->neurons) * F + 0.5) : F;
    if (keep_h > NH)
        return et_error_set(err, ET_ERR_RANGE, "--prune heads=%d: the model has %d heads per layer (heads=N is how "
                            "many each layer keeps)", keep_h, NH);
    if (keep_f > F)
        return et_error_set(err, ET_ERR_RANGE, "--prune ffn=%d: the model's MLP has %d neurons per layer (ffn=F is "
                            "how many each layer keeps)", keep_f, F);
    if (keep_f < 1)
        return et_error_set(err, ET_ERR_RANGE, "--prune neurons=%g would leave no MLP neuron of %d", (double)p->neurons,
                            F);
    if (et_prune_struct_config(&cfg, keep_h, keep_f, &out) != ET_OK)
        return et_error_set(err, ET_ERR_INVALID, "cannot shrink the model to %d heads and %d neurons per layer",
                            keep_h, keep_f);
    hs = malloc(sizeof(float) * (size_t)L * NH);
    ns = malloc(sizeof(float) * (size_t)L * F);
    hidx = malloc(sizeof(int) * (size_t)L * keep_h);
    nidx = malloc(sizeof(int) * (size_t)L * keep_f);
    nout = et_gpt_tensors(&out, t);
    np = malloc(sizeof(float) * nout);
    if (!hs || !ns || !hidx || !nidx || !np) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
    if (p->weights) {
        if ((s = et_prune_struct_weight_scores(&cfg, c->params, hs, ns)) != ET_OK) {
            et_error_set(err, s, "cannot score heads and neurons: %s", et_status_str(s));
            goto out;
        }
    } else if ((s = act_scores(c, p, cal, ncal, B, T, threads, hs, ns, err)) != ET_OK) {
        goto out;
    }
    if ((s = et_prune_struct_select(hs, L, NH, keep_h, hidx)) != ET_OK ||
        (s = et_prune_struct_select(ns, L, F, keep_f, nidx)) != ET_OK) {
        et_error_set(err, s, "cannot choose the units kept: %s%s", et_status_str(s),
                     s == ET_ERR_RANGE ? " (a non-finite score: is the model diverged?)" : "");
        goto out;
    }
    print_kept(fo->progress, "heads", hidx, L, keep_h, NH);
    print_kept(fo->progress, "MLP neurons", nidx, L, keep_f, F);
    if ((s = et_prune_struct_shrink(&cfg, c->params, hidx, nidx, &out, np)) != ET_OK) {
        et_error_set(err, s, "cannot shrink the model: %s", et_status_str(s));
        goto out;
    }
    if (fo->steps > 0) { /* the smaller model is dense: fine-tune it with nothing masked */
        memset(&none, 0, sizeof none);
        none.kind = 1;
        none.sparsity = 0.0f;
        mask = malloc(et_prune_mask_bytes(nout));
        if (!mask) { s = et_error_set(err, ET_ERR_NOMEM, "out of memory"); goto out; }
        if ((s = et_compress_prune(&out, np, &none, fo, cal, ncal, mask, err)) != ET_OK) goto out;
    }
    free(c->params);
    free(c->adam_m);
    free(c->adam_v);
    free(c->train_state);
    c->params = np;
    np = NULL;
    c->adam_m = c->adam_v = NULL;
    c->train_state = NULL;
    c->train_state_bytes = 0;
    c->step = 0;
    c->cfg = out;
    c->nparams = nout;
    s = ET_OK;
out:
    free(hs);
    free(ns);
    free(hidx);
    free(nidx);
    free(np);
    free(mask);
    return s;
}

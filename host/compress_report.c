/* compress_report.c - the compress report: one Markdown table and the same figures as
 * JSON, both written atomically beside the compressed model. Each row after the first
 * is also compared with the first (the fp32 model): times smaller, relative loss
 * change, speed-up. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_compress.h"
#include "et_qmodel.h"

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (s->oom) return;
    for (;;) {
        va_start(ap, fmt);
        k = vsnprintf(s->b + s->n, s->cap - s->n, fmt, ap);
        va_end(ap);
        if (k < 0) { s->oom = 1; return; }
        if ((size_t)k < s->cap - s->n) { s->n += (size_t)k; return; }
        {
            size_t nc = (s->cap + (size_t)k + 1) * 2;
            char *nb = (char *)realloc(s->b, nc);
            if (!nb) { s->oom = 1; return; }
            s->b = nb;
            s->cap = nc;
        }
    }
}

static double pct_change(double now, double before) { return 100.0 * (now - before) / before; }

static void markdown(sbuf *s, const et_compress_report *r)
{
    const et_compress_stage *f = &r->st[0];
    int i;
    sb_printf(s, "# edgetrain compress report\n\n");
    sb_printf(s, "Evaluation: %d batches of %d x %d tokens (%zu tokens), %d thread%s; calibration: %s.\n",
              r->eval_batches, r->B, r->T, r->eval_tokens, r->threads, r->threads == 1 ? "" : "s", r->calib);
    sb_printf(s, "Tokens/s: forward passes only, best of %d rounds of %d batches, the models' rounds "
                 "alternating in one process.\n\n", r->speed_rounds, r->speed_batches);
    sb_printf(s, "| model | parameters | weight bytes | file bytes | RAM bytes (B x T) | val loss | perplexity | tokens/s |\n");
    sb_printf(s, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < r->n; i++) {
        const et_compress_stage *x = &r->st[i];
        sb_printf(s, "| %s | %zu | %zu | %zu | %zu | %.4f | %.3f | %.0f |\n", x->name, x->params,
                  x->weight_bytes, x->file_bytes, x->ram_bytes, x->loss, exp(x->loss), x->tok_s);
    }
    if (r->n > 1) {
        sb_printf(s, "\n| vs fp32 | weights smaller | RAM smaller | val loss change | speed-up |\n");
        sb_printf(s, "|---|---:|---:|---:|---:|\n");
        for (i = 1; i < r->n; i++) {
            const et_compress_stage *x = &r->st[i];
            sb_printf(s, "| %s | %.2fx | %.2fx | %+.2f%% | %.2fx |\n", x->name,
                      (double)f->weight_bytes / (double)x->weight_bytes,
                      (double)f->ram_bytes / (double)x->ram_bytes, pct_change(x->loss, f->loss),
                      x->tok_s / f->tok_s);
        }
    }
    for (i = 0; i < r->n; i++)
        if (r->st[i].file_computed) {
            sb_printf(s, "\nFile bytes of a stage that was not written (every one but the last) are the exact size "
                         "its compact-model file would have. Every stage after the first runs on the compact path: "
                         "its own storage and kernels (N:M and bitmap matrices read only their kept weights, "
                         "factored layers run as two matmuls), so its tokens/s is measured, not inherited.\n");
            break;
        }
    sb_printf(s, "\nThe fp32 file is the input checkpoint as it is (it may hold AdamW state and a "
                 "tokenizer); weight bytes compare the weights alone.\n");
}

static void json_str(sbuf *s, const char *v)
{
    sb_printf(s, "\"");
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') sb_printf(s, "\\%c", *v);
        else if ((unsigned char)*v < 0x20) sb_printf(s, "\\u%04x", (unsigned)(unsigned char)*v);
        else sb_printf(s, "%c", *v);
    }
    sb_printf(s, "\"");
}

static void json(sbuf *s, const et_compress_report *r)
{
    int i;
    sb_printf(s, "{\n  \"eval\": {\"batches\": %d, \"batch\": %d, \"seq\": %d, \"tokens\": %zu, \"threads\": %d, "
                 "\"speed_rounds\": %d, \"speed_batches\": %d},\n",
              r->eval_batches, r->B, r->T, r->eval_tokens, r->threads, r->speed_rounds, r->speed_batches);
    sb_printf(s, "  \"calibration\": ");
    json_str(s, r->calib);
    sb_printf(s, ",\n  \"models\": [\n");
    for (i = 0; i < r->n; i++) {
        const et_compress_stage *x = &r->st[i];
        sb_printf(s, "    {\"name\": ");
        json_str(s, x->name);
        sb_printf(s, ", \"parameters\": %zu, \"weight_bytes\": %zu, \"file_bytes\": %zu, \"ram_bytes\": %zu, "
                     "\"val_loss\": %.6f, \"perplexity\": %.6f, \"tokens_per_s\": %.1f, "
                     "\"loss_change_pct\": %.4f, \"weights_smaller\": %.4f, \"speedup\": %.4f, "
                     "\"file_computed\": %s, \"written\": %s}%s\n",
                  x->params, x->weight_bytes, x->file_bytes, x->ram_bytes, x->loss, exp(x->loss), x->tok_s,
                  pct_change(x->loss, r->st[0].loss), (double)r->st[0].weight_bytes / (double)x->weight_bytes,
                  x->tok_s / r->st[0].tok_s, x->file_computed ? "true" : "false",
                  i == r->final && i > 0 ? "true" : "false", i + 1 < r->n ? "," : "");
    }
    sb_printf(s, "  ]\n}\n");
}

et_status et_compress_report_write(const et_compress_report *r, et_error *err)
{
    sbuf md = {0, 0, 0, 0}, js = {0, 0, 0, 0};
    et_status s;
    if (!r || r->n < 1) return et_error_set(err, ET_ERR_INVALID, "empty report");
    markdown(&md, r);
    json(&js, r);
    if (md.oom || js.oom) s = et_error_set(err, ET_ERR_NOMEM, "out of memory for the report");
    else if ((s = et_qmodel_write_file(r->md_path, md.b, md.n, err)) == ET_OK)
        s = et_qmodel_write_file(r->json_path, js.b, js.n, err);
    free(md.b);
    free(js.b);
    return s;
}

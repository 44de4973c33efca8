/* labelled.c - labelled text for a task head (labelled.h): reading "text<TAB>class"
 * lines, the interleaved held-out split, --head's argument, and a head's accuracy.
 * Deliberately avoids: any cleaning of the text (the tokenizer skips what it lacks, as
 * finetune does for plain text) and shuffling the split (every k-th line is reproducible
 * by hand: `awk 'NR % 10 == 0'`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "labelled.h"

void cli_labelled_free(cli_labelled *d)
{
    free(d->label); free(d->line); free(d->off); free(d->ids);
    memset(d, 0, sizeof *d);
}

/* prints "edgetrain CMD: error: PATH:LINE: MSG", frees what the reader holds */
static int bad(const char *cmd, const char *path, int line, const char *msg, cli_labelled *d, char *text, int32_t *tmp)
{
    fprintf(stderr, "edgetrain %s: error: %s:%d: %s\n", cmd, path, line, msg);
    free(text); free(tmp);
    cli_labelled_free(d);
    return 1;
}

int cli_labelled_read(const char *cmd, const char *path, const et_tokenizer *tok, int classes, cli_labelled *d)
{
    FILE *fp = fopen(path, "rb");
    char *text = NULL, *p, *end, msg[160];
    int32_t *tmp = NULL;
    size_t n = 0, lines = 0, i, cap;
    long len;
    int ln = 0;
    memset(d, 0, sizeof *d);
    if (!fp || fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        if (fp) fclose(fp);
        fprintf(stderr, "edgetrain %s: error: %s: cannot open\n", cmd, path);
        return 1;
    }
    n = (size_t)len;
    text = malloc(n + 1);
    if (!text || fread(text, 1, n, fp) != n) {
        fclose(fp);
        free(text);
        fprintf(stderr, "edgetrain %s: error: %s: read failed\n", cmd, path);
        return 1;
    }
    fclose(fp);
    text[n] = 0;
    for (i = 0; i < n; i++) lines += text[i] == '\n';
    lines++;
    cap = n + 1; /* no tokenizer makes more tokens than bytes */
    d->label = malloc(sizeof(int) * lines);
    d->line = malloc(sizeof(int) * lines);
    d->off = malloc(sizeof(size_t) * (lines + 1));
    d->ids = malloc(sizeof(int) * cap);
    tmp = malloc(sizeof(int32_t) * cap);
    if (!d->label || !d->line || !d->off || !d->ids || !tmp) {
        fprintf(stderr, "edgetrain %s: error: %s: out of memory\n", cmd, path);
        free(text); free(tmp);
        cli_labelled_free(d);
        return 1;
    }
    d->off[0] = 0;
    for (p = text; p < text + n; p = end + 1) {
        char *tab = NULL, *q, *lab, *le;
        size_t got = 0, unk = 0, k;
        long v = 0;
        end = memchr(p, '\n', (size_t)(text + n - p));
        if (!end) end = text + n;
        ln++;
        for (q = p; q < end && (*q == ' ' || *q == '\t' || *q == '\r'); q++) {}
        if (q == end) continue; /* blank line */
        for (q = p; q < end; q++) if (*q == '\t') tab = q;
        if (!tab) {
            snprintf(msg, sizeof msg, "no TAB before a class (each line is text<TAB>class, a class 0..%d)", classes - 1);
            return bad(cmd, path, ln, msg, d, text, tmp);
        }
        lab = tab + 1;
        for (le = end; le > lab && (le[-1] == ' ' || le[-1] == '\r' || le[-1] == '\t'); le--) {}
        while (lab < le && *lab == ' ') lab++;
        for (q = lab; q < le && *q >= '0' && *q <= '9'; q++)
            if (v <= ET_LORA_MAX_CLASSES) v = v * 10 + (*q - '0'); /* past that only "too large" matters */
        if (lab == le || q != le) {
            snprintf(msg, sizeof msg, "class '%.*s' is not a number (expected a class 0..%d after the last TAB)",
                     (int)(le - lab < 24 ? le - lab : 24), lab, classes - 1);
            return bad(cmd, path, ln, msg, d, text, tmp);
        }
        if (v >= classes) {
            snprintf(msg, sizeof msg, "class %s%ld is out of range for a %d-class head (0..%d; --head classes=K sets K)",
                     v > ET_LORA_MAX_CLASSES ? "> " : "", v > ET_LORA_MAX_CLASSES ? (long)ET_LORA_MAX_CLASSES : v, classes,
                     classes - 1);
            return bad(cmd, path, ln, msg, d, text, tmp);
        }
        if (et_tok_encode_i32(tok, p, (size_t)(tab - p), tmp, cap, &got, ET_TOK_SKIP_UNKNOWN, &unk) != ET_OK) {
            fprintf(stderr, "edgetrain %s: error: %s:%d: cannot tokenize\n", cmd, path, ln);
            free(text); free(tmp);
            cli_labelled_free(d);
            return 1;
        }
        d->unknown += unk;
        if (!got) { d->empty++; continue; }
        for (k = 0; k < got; k++) d->ids[d->off[d->n] + k] = tmp[k];
        d->label[d->n] = (int)v;
        d->line[d->n] = ln;
        d->off[d->n + 1] = d->off[d->n] + got;
        if ((int)got > d->longest) d->longest = (int)got;
        d->n++;
    }
    free(text);
    free(tmp);
    if (!d->n) {
        fprintf(stderr, "edgetrain %s: error: %s: no labelled example (each line is text<TAB>class)\n", cmd, path);
        cli_labelled_free(d);
        return 1;
    }
    return 0;
}

int cli_labelled_every(float val_frac)
{
    return val_frac > 0 ? (int)lround(1.0 / val_frac) : 0;
}

int cli_labelled_held_out(int i, int every)
{
    return every > 0 && i % every == every - 1;
}

int cli_head_parse(const char *spec, int *classes, et_lora_pool *pool)
{
    const char *p = spec;
    char *end;
    long k;
    *pool = ET_LORA_POOL_MEAN;
    if (!strncmp(p, "classes=", 8)) p += 8;
    k = strtol(p, &end, 10);
    if (end == p || k < 2 || k > ET_LORA_MAX_CLASSES) return 1;
    p = end;
    if (*p == ',') {
        p++;
        if (!strcmp(p, "pool=mean")) *pool = ET_LORA_POOL_MEAN;
        else if (!strcmp(p, "pool=last")) *pool = ET_LORA_POOL_LAST;
        else return 1;
    } else if (*p) return 1;
    *classes = (int)k;
    return 0;
}

et_status cli_labelled_accuracy(et_lora *s, const cli_labelled *d, int every, int which, int T, cli_accuracy *a)
{
    int i, k, K = s->lc.head_classes, *count;
    float *lg;
    et_status st = ET_OK;
    memset(a, 0, sizeof *a);
    count = calloc((size_t)K, sizeof *count);
    lg = malloc(sizeof(float) * (size_t)K);
    if (!count || !lg) { free(count); free(lg); return ET_ERR_NOMEM; }
    for (i = 0; i < d->n; i++) {
        int n = (int)(d->off[i + 1] - d->off[i]), cls, y = d->label[i];
        double mx, z = 0.0;
        if (which >= 0 && cli_labelled_held_out(i, every) != which) continue;
        if (n > T) { n = T; a->truncated++; }
        if ((st = et_lora_classify(s, d->ids + d->off[i], n, lg, &cls)) != ET_OK) break;
        mx = lg[cls];
        for (k = 0; k < K; k++) z += exp((double)lg[k] - mx);
        a->loss += mx + log(z) - lg[y];
        a->right += cls == y;
        a->n++;
        count[y]++;
    }
    for (k = 0; k < K; k++)
        if (count[k] > a->majority_n) { a->majority_n = count[k]; a->majority = k; }
    if (a->n) a->loss /= a->n;
    free(count);
    free(lg);
    return st;
}

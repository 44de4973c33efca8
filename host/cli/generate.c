/* generate.c - see generate.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_rng.h"
#include "et_sample.h"
#include "generate.h"

int cli_generate(const cli_gen_opts *o, const et_tokenizer *tok, cli_logits_fn fn, void *model)
{
    size_t plen = strlen(o->prompt), cap = plen + (size_t)o->length + 1, nids = 0, unk = 0;
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    float *logits = malloc(sizeof(float) * (size_t)o->vocab);
    float *scratch = malloc(sizeof(float) * (size_t)o->vocab);
    et_rng rng;
    int i, rc = 0;
    if (!ids || !logits || !scratch) {
        fprintf(stderr, "edgetrain sample: out of memory\n");
        rc = 1;
        goto out;
    }
    if (et_tok_encode_i32(tok, o->prompt, plen, ids, cap, &nids, ET_TOK_SKIP_UNKNOWN, &unk) != ET_OK) {
        fprintf(stderr, "edgetrain sample: error: cannot encode the prompt\n");
        rc = 1;
        goto out;
    }
    if (unk) fprintf(stderr, "edgetrain sample: warning: skipped %zu prompt characters the tokenizer lacks\n", unk);
    if (nids == 0) ids[nids++] = 0;
    et_rng_seed(&rng, (uint64_t)(unsigned)o->seed);
    fwrite(o->prompt, 1, plen, stdout);
    for (i = 0; i < o->length; i++) {
        size_t start = nids > (size_t)o->context ? nids - (size_t)o->context : 0;
        int T = (int)(nids - start), next;
        char buf[64];
        size_t nb = 0;
        if (fn(model, ids + start, T, logits) != ET_OK ||
            et_sample_token(logits, (int)et_tok_vocab_size(tok), o->temperature, o->top_k, scratch, &rng,
                            &next) != ET_OK) {
            fprintf(stderr, "\nedgetrain sample: error: generation failed\n");
            rc = 1;
            break;
        }
        ids[nids++] = next;
        if (et_tok_decode_i32(tok, &ids[nids - 1], 1, buf, sizeof buf, &nb) == ET_OK) fwrite(buf, 1, nb, stdout);
    }
    printf("\n");
out:
    free(ids);
    free(logits);
    free(scratch);
    return rc;
}

void cli_gen_defaults(cli_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prompt = "\n";
    o->length = 300;
    o->temperature = 1.0f;
    o->top_k = 0;
    o->seed = 1337;
}

int cli_gen_valid(const cli_gen_opts *o)
{
    return o->length >= 0 && o->top_k >= 0 && o->temperature >= 0;
}

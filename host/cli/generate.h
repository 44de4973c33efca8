/* generate.h - the CLI's text generation loop, shared by every model kind (fp32,
 * pruned, quantized): encode the prompt, slide a window of the model's context, sample,
 * decode and print as it goes. The model is a callback giving the last position's logits. */
#ifndef ET_CLI_GENERATE_H
#define ET_CLI_GENERATE_H

#include "et_tokenizer.h"

/** Logits (V floats) of the last of the T tokens in @p ids. */
typedef et_status (*cli_logits_fn)(void *model, const int32_t *ids, int T, float *logits);

typedef struct {
    const char *prompt;
    int length;        /* tokens to generate */
    float temperature;
    int top_k;
    int seed;
    int context;       /* the model's longest sequence */
    int vocab;         /* the model's vocabulary (logits per position) */
} cli_gen_opts;

/** Prints the prompt and @p o->length sampled tokens to stdout; 0 on success, 1 (with a
 *  message on stderr) on failure. */
int cli_generate(const cli_gen_opts *o, const et_tokenizer *tok, cli_logits_fn fn, void *model);

#endif

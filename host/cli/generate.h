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

/** Sets the sampling defaults: prompt "\n", 300 tokens, temperature 1, all tokens, seed
 *  1337 (context and vocab are the caller's). */
void cli_gen_defaults(cli_gen_opts *o);

/** The flag rows (flags.h) every sampling command shares, bound to the cli_gen_opts @p o. */
#define CLI_GEN_FLAGS(o)                                                                    \
    {"prompt", 'p', F_STR, &(o).prompt, "text to continue"},                               \
    {"length", 'n', F_INT, &(o).length, "tokens to generate"},                             \
    {"temperature", 0, F_FLOAT, &(o).temperature, "0: always the most likely token"},      \
    {"top-k", 'k', F_INT, &(o).top_k, "sample among the k most likely (0: all)"},          \
    {"seed", 0, F_INT, &(o).seed, "random seed"}

/** 1 when the sampling options are usable (length and top-k not negative, temperature
 *  not negative or NaN). */
int cli_gen_valid(const cli_gen_opts *o);

/** Prints the prompt and @p o->length sampled tokens to stdout; 0 on success, 1 (with a
 *  message on stderr) on failure. */
int cli_generate(const cli_gen_opts *o, const et_tokenizer *tok, cli_logits_fn fn, void *model);

#endif

/* labelled.h - labelled text for a task head (docs/EDGE.md, "A new task head"): one
 * example a line, "text<TAB>class" (the format of the UCI sentiment files in
 * ../shared/data), tokenized with the image's tokenizer; the held-out split every
 * finetune and eval share; `--head classes=K[,pool=mean|last]`; and accuracy of a head
 * session over a split. */
#ifndef ET_CLI_LABELLED_H
#define ET_CLI_LABELLED_H

#include <stddef.h>
#include "et_lora.h"
#include "et_tokenizer.h"

/** Examples of a labelled file. */
typedef struct cli_labelled {
    int n;          /**< examples */
    int *label;     /**< (n) class of each */
    int *line;      /**< (n) its line in the file (1-based), for messages */
    size_t *off;    /**< (n + 1) where each example's tokens start in ids */
    int *ids;       /**< every example's tokens, back to back */
    size_t unknown; /**< characters the tokenizer lacks (skipped) */
    int empty;      /**< lines whose text kept no token (skipped, counted) */
    int longest;    /**< most tokens in one example */
} cli_labelled;

/**
 * Reads @p path: blank lines are skipped; every other line must be text, a TAB, and a
 * class number 0..classes-1 (the last TAB separates them; spaces and a CR after the
 * number are allowed). The first bad line is an error naming the file, the line and what
 * was expected. Prints its own one-line error as "edgetrain CMD: error: ...".
 * @return 0, or 1 after printing the error
 */
int cli_labelled_read(const char *cmd, const char *path, const et_tokenizer *tok, int classes, cli_labelled *d);

void cli_labelled_free(cli_labelled *d);

/** The held-out split: example i is held out when i % every == every - 1, every =
 *  round(1 / val_frac) (interleaved, so a file sorted by class still splits evenly);
 *  val_frac 0: no split (every = 0). */
int cli_labelled_every(float val_frac);

/** 1 when example @p i is held out under @p every (never when every is 0). */
int cli_labelled_held_out(int i, int every);

/**
 * Parses "classes=K[,pool=mean|last]" (or "K") of --head.
 * @return 0, or 1 when malformed or K is outside 2..ET_LORA_MAX_CLASSES
 */
int cli_head_parse(const char *spec, int *classes, et_lora_pool *pool);

/** Accuracy of a head over a set of examples. */
typedef struct cli_accuracy {
    int n, right;     /**< examples, correctly classified */
    double loss;      /**< mean cross-entropy */
    int majority;     /**< the most frequent class of the set (lowest on a tie) */
    int majority_n;   /**< its examples: what always answering it scores */
    int truncated;    /**< examples longer than T (their first T tokens were used) */
} cli_accuracy;

/**
 * Classifies the examples of @p d that are held out (@p which 1) or not (0), or all
 * (@p which -1), each truncated to its first @p T tokens.
 * @return ET_OK or the first failing status of et_lora_classify
 */
et_status cli_labelled_accuracy(et_lora *s, const cli_labelled *d, int every, int which, int T, cli_accuracy *a);

#endif

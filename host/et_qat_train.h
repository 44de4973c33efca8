/* et_qat_train.h - quantization-aware training on the host: the QAT proxy
 * (compress/et_qat.h) put in front of a training model, its range state saved beside
 * each checkpoint (so `train --qat --resume` continues exactly), and the export of the
 * trained model to the int8 file `edgetrain compress` writes (.etq), with the
 * activation ranges QAT tracked as its calibration. */
#ifndef ET_QAT_TRAIN_H
#define ET_QAT_TRAIN_H

#include <stdint.h>
#include "et_host.h"
#include "et_qat.h"

typedef struct et_qat_train {
    void *mem;      /**< the QAT arena (one aligned block of et_qat_bytes) */
    et_arena arena;
    et_qat q;
    int open;
} et_qat_train;

/** Parses "w8a8" or "w8a32". ET_ERR_INVALID with a message otherwise. */
et_status et_qat_mode_parse(const char *s, et_qmode *mode, et_error *err);

/**
 * Puts fake quantization in front of model @p m, which runs through @p table (m->be,
 * a backend on host memory) and keeps its fp32 master weights.
 * @param[in] decay moving-average decay of the activation ranges, in [0, 1)
 */
et_status et_qat_train_open(et_qat_train *h, const et_gpt *m, et_backend *table, et_qmode mode,
                            float decay, et_error *err);

/** Writes the ranges to "<ckpt>.qat" (atomically): what a resumed run needs besides the
 *  checkpoint. */
et_status et_qat_train_save_state(const et_qat_train *h, const char *ckpt, et_error *err);

/** Reads "<ckpt>.qat" back; refuses one of another mode or shape (the message names the
 *  file and what differs). */
et_status et_qat_train_load_state(et_qat_train *h, const char *ckpt, et_error *err);

/**
 * Exports the model the training simulated: the int8 blob of @p m's fp32 master weights
 * with the tracked ranges, saved atomically as a quantized-model file at @p path
 * (calibration method ET_QAT_CALIB_METHOD, its batches the training steps that
 * committed ranges).
 */
et_status et_qat_train_export(et_qat_train *h, const et_gpt *m, const void *tokenizer,
                              size_t tokenizer_bytes, const char *path, et_error *err);

/**
 * Loads the quantized-model file @p path and returns its mean loss over @p batches
 * batches of B x T from the start of @p tokens: the windows et_eval_tokens reads, so
 * the figure compares with the fake-quantized model's validation loss.
 */
et_status et_qat_train_eval_file(const char *path, const uint16_t *tokens, size_t n, int B, int T,
                                 int batches, int threads, float *loss, et_error *err);

/** Takes the proxy out (the model runs plain fp32 again) and frees the arena. Safe on
 *  a zeroed or closed handle. */
void et_qat_train_close(et_qat_train *h);

#endif /* ET_QAT_TRAIN_H */

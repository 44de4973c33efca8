/* edgetrain.h - the freestanding core's public API in one include: arena, status codes,
 * threads hook, backend interface, the cpu backend, the GPT model, RNG and sampling.
 * Hosted helpers (files, tokenizers, trainer, thread pool) have their own headers
 * (et_ckpt.h, et_tokenizer.h, et_train.h, et_pool.h, ...). */
#ifndef EDGETRAIN_H
#define EDGETRAIN_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_threads.h"
#include "et_backend.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_rng.h"
#include "et_sample.h"

#endif /* EDGETRAIN_H */

/* cmd_distill.c - `edgetrain distill`: a student GPT trained against a teacher's logits
 * (et_distill_host.h). With --alpha 0 it is plain training through the same loop, the
 * fair baseline for a distilled student. */
#include <stdio.h>
#include <string.h>
#include "cmd_compress.h"
#include "et_distill_host.h"
#include "flags.h"

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

int cmd_distill(int argc, char **argv)
{
    et_distill_opts o;
    et_distill_result r;
    et_error e = {0};
    int help = 0, seed, quiet = 0;
    flag f[] = {
        {"teacher", 0, F_STR, NULL, "teacher checkpoint (edgetrain or llm.c)"},
        {"data", 'd', F_STR, NULL, "training shard (.bin)"},
        {"val-data", 0, F_STR, NULL, "validation shard (.bin)"},
        {"out", 'o', F_STR, NULL, "output folder (model.etck)"},
        {"layers", 0, F_INT, NULL, "student blocks"},
        {"heads", 0, F_INT, NULL, "student attention heads"},
        {"channels", 0, F_INT, NULL, "student embedding width"},
        {"batch", 'b', F_INT, NULL, "sequences per step"},
        {"seq", 't', F_INT, NULL, "tokens per sequence"},
        {"steps", 0, F_INT, NULL, "optimizer steps"},
        {"lr", 0, F_FLOAT, NULL, "peak learning rate (cosine to --lr-min)"},
        {"lr-min", 0, F_FLOAT, NULL, "final learning rate"},
        {"warmup", 0, F_INT, NULL, "linear warmup steps"},
        {"alpha", 0, F_FLOAT, NULL, "weight of the teacher term in [0, 1] (0: plain training)"},
        {"tau", 0, F_FLOAT, NULL, "softmax temperature of the teacher term"},
        {"seed", 0, F_INT, NULL, "random seed (student init and batches)"},
        {"threads", 0, F_INT, NULL, "worker threads (0: all cores)"},
        {"eval-batches", 0, F_INT, NULL, "validation batches at the end (0: the whole shard)"},
        {"quiet", 'q', F_BOOL, &quiet, "no progress lines"},
    };
    et_distill_opts_init(&o);
    seed = (int)o.seed;
    f[0].ptr = &o.teacher; f[1].ptr = &o.data; f[2].ptr = &o.val_data; f[3].ptr = &o.out_dir;
    f[4].ptr = &o.layers; f[5].ptr = &o.heads; f[6].ptr = &o.channels; f[7].ptr = &o.B; f[8].ptr = &o.T;
    f[9].ptr = &o.steps; f[10].ptr = &o.lr; f[11].ptr = &o.lr_min; f[12].ptr = &o.warmup; f[13].ptr = &o.alpha;
    f[14].ptr = &o.tau; f[15].ptr = &seed; f[16].ptr = &o.threads; f[17].ptr = &o.eval_batches;
    if (flags_parse("distill", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("distill", "Trains a student GPT on a teacher's softened logits plus the labels.", f, NF(f));
        return 0;
    }
    if (!o.teacher || !o.data) {
        fprintf(stderr, "edgetrain distill: --teacher and --data are required\n");
        return 2;
    }
    if (!(o.alpha >= 0.0f && o.alpha <= 1.0f) || !(o.tau > 0.0f) || o.eval_batches < 0) {
        fprintf(stderr, "edgetrain distill: --alpha must be in [0, 1], --tau positive, --eval-batches >= 0\n");
        return 2;
    }
    o.seed = (uint64_t)(unsigned)seed;
    o.progress = quiet ? NULL : stdout;
    if (et_distill(&o, &r, &e) != ET_OK) {
        fprintf(stderr, "edgetrain distill: error: %s\n", e.msg[0] ? e.msg : et_status_str(e.status));
        return 1;
    }
    printf("student %zu parameters (teacher %zu), %d steps in %.1f s, alpha %g, tau %g\n", r.student_params,
           r.teacher_params, o.steps, r.seconds, (double)o.alpha, (double)o.tau);
    if (r.val_loss >= 0) printf("val loss %.4f (teacher %.4f)\n", r.val_loss, r.teacher_val_loss);
    printf("wrote %s/model.etck\n", o.out_dir);
    return 0;
}

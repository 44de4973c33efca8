/* cmd_devices.c - `edgetrain devices`: what each backend of this build finds (platforms,
 * device names, memory), or why it finds nothing; and `edgetrain devices --bench`: the
 * training speed of a model of given shape on random tokens on one backend, with a
 * per-op time breakdown (--profile).
 *
 * The bench times whole AdamW steps (forward, backward, update) after warm-up steps
 * that absorb kernel compilation; --profile then runs the same steps once more with a
 * wait after every op, so each op's share is its own (and the total a little higher).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_accel.h"
#include "et_fallback.h"
#include "et_runtime.h"
#include "flags.h"

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MAXDEV 32

int cmd_devices(int argc, char **argv);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void list_backend(const char *name)
{
    et_accel_device d[MAXDEV];
    et_error e = {0};
    int n = 0, i;
    if (!strcmp(name, "cpu")) {
        printf("cpu: %d cores (the reference backend)\n", et_cpu_count());
        return;
    }
    if (!et_accel_has(name)) {
        printf("%s: not in this build (this build has: %s; rebuild with make %s=1)\n", name,
               et_accel_built(), !strcmp(name, "cuda") ? "CUDA" : "OPENCL");
        return;
    }
    if (et_accel_devices(name, d, MAXDEV, &n, &e) != ET_OK) {
        printf("%s\n", e.msg); /* "<backend>: why there is no device" */
        return;
    }
    printf("%s: %d device%s\n", name, n, n == 1 ? "" : "s");
    for (i = 0; i < n && i < MAXDEV; i++)
        printf("  %-11s %s  [%s; %s]  %s, %d compute units, %.1f GiB memory (largest buffer %.1f GiB)\n",
               d[i].spec, d[i].name, d[i].platform, d[i].version, d[i].is_gpu ? "GPU" : "not a GPU",
               d[i].units, (double)d[i].mem_bytes / 1073741824.0,
               (double)d[i].max_alloc / 1073741824.0);
}

/* --- bench */

typedef struct {
    const char *backend;
    et_gpt_config cfg;
    int B, T, steps, warmup, threads, profile;
} bench_opts;

static et_status run_steps(et_runtime *rt, const bench_opts *o, int *in, int *tg, int n,
                           unsigned *seed)
{
    et_adamw_config opt = {3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int s, i, BT = o->B * o->T;
    et_status st;
    for (s = 0; s < n; s++) {
        for (i = 0; i < BT; i++) {
            *seed = *seed * 1103515245u + 12345u;
            in[i] = (int)((*seed >> 8) % (unsigned)o->cfg.vocab);
            tg[i] = (in[i] + 1) % o->cfg.vocab;
        }
        if ((st = et_gpt_forward(&rt->model, in, tg, o->B, o->T)) != ET_OK ||
            (st = et_gpt_zero_grad(&rt->model)) != ET_OK ||
            (st = et_gpt_backward(&rt->model, 1.0f)) != ET_OK ||
            (st = et_gpt_step(&rt->model, &opt)) != ET_OK)
            return st;
    }
    /* a step ends with a queued AdamW on a device: wait, so the time is complete */
    return rt->accel ? et_accel_sync(rt->accel) : ET_OK;
}

static void print_profile(const et_fallback *fb, int steps)
{
    double total = 0.0;
    int i;
    for (i = 0; i < ET_OP_COUNT; i++) total += fb->seconds[i];
    printf("  per op (a wait after every op; %.1f ms/step in all):\n", 1e3 * total / steps);
    printf("    %-17s %8s %10s %7s %9s\n", "op", "calls", "ms/step", "share", "on cpu");
    for (i = 0; i < ET_OP_COUNT; i++) {
        if (!fb->calls[i]) continue;
        printf("    %-17s %8lu %10.2f %6.1f%% %9lu\n", et_fallback_op_name(i),
               fb->calls[i] / (unsigned long)steps, 1e3 * fb->seconds[i] / steps,
               total > 0 ? 100.0 * fb->seconds[i] / total : 0.0, fb->fallbacks[i]);
    }
}

static int bench(const bench_opts *o)
{
    et_runtime rt;
    et_error e = {0};
    et_fallback cpu_fb, *fb = NULL;
    et_backend inner;
    int *in, *tg, rc = 0;
    unsigned seed = 1234;
    double t0, dt;
    et_status s;
    if (et_runtime_open(&rt, o->backend, &o->cfg, o->B, o->T, ET_GPT_TRAIN, o->threads, &e) != ET_OK) {
        fprintf(stderr, "edgetrain devices: error: %s\n", e.msg);
        return 1;
    }
    in = malloc(sizeof(int) * (size_t)o->B * o->T);
    tg = malloc(sizeof(int) * (size_t)o->B * o->T);
    if (!in || !tg) {
        fprintf(stderr, "edgetrain devices: out of memory\n");
        rc = 1;
        goto out;
    }
    et_gpt_init_weights(&rt.model, 1);
    printf("bench %s: vocab %d, layers %d, heads %d, channels %d, context %d; B %d, T %d; "
           "%zu parameters; memory %.1f MiB (device %.1f MiB)\n",
           rt.accel ? et_accel_name(rt.accel) : "cpu", o->cfg.vocab, o->cfg.layers, o->cfg.heads,
           o->cfg.channels, o->cfg.context, o->B, o->T, rt.model.nparams,
           rt.plan.total / 1048576.0, rt.plan.device / 1048576.0);
    t0 = now_s();
    if ((s = run_steps(&rt, o, in, tg, o->warmup, &seed)) != ET_OK) goto fail;
    printf("  warm-up: %d step%s in %.2f s (kernel builds included)\n", o->warmup,
           o->warmup == 1 ? "" : "s", now_s() - t0);
    t0 = now_s();
    if ((s = run_steps(&rt, o, in, tg, o->steps, &seed)) != ET_OK) goto fail;
    dt = now_s() - t0;
    printf("  %d steps in %.3f s: %.1f ms/step, %.0f tokens/s (last loss %.4f)\n", o->steps, dt,
           1e3 * dt / o->steps, (double)o->steps * o->B * o->T / dt, rt.model.mean_loss);
    if (o->profile) {
        if (rt.accel) {
            fb = et_accel_proxy(rt.accel);
        } else {
            /* the cpu backend is used directly: put the same proxy in front of it */
            inner = rt.be;
            if (et_fallback_wrap(&cpu_fb, &inner, NULL, &rt.threads, &rt.be) != ET_OK) goto out;
            fb = &cpu_fb;
        }
        et_fallback_reset_counters(fb);
        fb->profile = 1;
        if ((s = run_steps(&rt, o, in, tg, o->steps, &seed)) != ET_OK) goto fail;
        print_profile(fb, o->steps);
        if (!rt.accel) {
            rt.be = inner;
            et_fallback_release(&cpu_fb);
        }
    }
    goto out;
fail:
    fprintf(stderr, "edgetrain devices: error: training step failed: %s%s%s\n", et_status_str(s),
            rt.accel && *et_accel_last_error(rt.accel) ? ": " : "",
            rt.accel ? et_accel_last_error(rt.accel) : "");
    rc = 1;
out:
    free(in);
    free(tg);
    et_runtime_close(&rt);
    return rc;
}

int cmd_devices(int argc, char **argv)
{
    const char *backend = NULL;
    int help = 0, do_bench = 0;
    bench_opts o;
    char built[128], *tok, *save = NULL;
    flag f[] = {
        {"backend", 0, F_STR, &backend, "list only this backend; with --bench, the one to time"},
        {"bench", 0, F_BOOL, &do_bench, "time training steps on random tokens"},
        {"profile", 0, F_BOOL, NULL, "with --bench: time every op"},
        {"vocab", 0, F_INT, NULL, "bench model: vocabulary"},
        {"layers", 0, F_INT, NULL, "bench model: transformer blocks"},
        {"heads", 0, F_INT, NULL, "bench model: attention heads"},
        {"channels", 0, F_INT, NULL, "bench model: embedding width"},
        {"context", 0, F_INT, NULL, "bench model: context (0: the sequence length)"},
        {"batch", 'b', F_INT, NULL, "bench: sequences per step"},
        {"seq", 't', F_INT, NULL, "bench: tokens per sequence"},
        {"steps", 0, F_INT, NULL, "bench: timed steps"},
        {"warmup", 0, F_INT, NULL, "bench: untimed steps first"},
        {"threads", 0, F_INT, NULL, "worker threads for cpu work (0: all cores)"},
    };
    memset(&o, 0, sizeof o);
    o.cfg.vocab = 65; o.cfg.layers = 6; o.cfg.heads = 6; o.cfg.channels = 384; o.cfg.context = 0;
    o.B = 8; o.T = 256; o.steps = 5; o.warmup = 1; o.threads = 0;
    f[2].ptr = &o.profile; f[3].ptr = &o.cfg.vocab; f[4].ptr = &o.cfg.layers;
    f[5].ptr = &o.cfg.heads; f[6].ptr = &o.cfg.channels; f[7].ptr = &o.cfg.context;
    f[8].ptr = &o.B; f[9].ptr = &o.T; f[10].ptr = &o.steps; f[11].ptr = &o.warmup;
    f[12].ptr = &o.threads;
    if (flags_parse("devices", f, NF(f), argc, argv, &help)) return 2;
    if (help) {
        flags_usage("devices", "Lists the devices each backend finds; --bench times training on one.",
                    f, NF(f));
        return 0;
    }
    if (do_bench) {
        if (o.B <= 0 || o.T <= 0 || o.steps <= 0 || o.warmup < 0 || o.cfg.context < 0) {
            fprintf(stderr, "edgetrain devices: --batch, --seq and --steps must be positive, "
                            "--warmup and --context >= 0\n");
            return 2;
        }
        if (o.cfg.context == 0) o.cfg.context = o.T;
        o.backend = backend ? backend : "cpu";
        return bench(&o);
    }
    if (backend) {
        list_backend(backend);
        return 0;
    }
    printf("this build has: %s\n", et_accel_built());
    snprintf(built, sizeof built, "cpu opencl cuda");
    for (tok = strtok_r(built, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) list_backend(tok);
    return 0;
}

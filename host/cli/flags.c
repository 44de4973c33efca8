/* flags.c - parsing "--name value", "--name=value" and "-x value" into typed slots,
 * rejecting unknown flags and malformed numbers with a message that names the flag. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "flags.h"

static int set_value(const char *cmd, flag *f, const char *val)
{
    char *end;
    errno = 0;
    switch (f->type) {
    case F_INT: {
        long v = strtol(val, &end, 10);
        if (!*val || *end || errno || v < -2147483647L || v > 2147483647L) {
            fprintf(stderr, "edgetrain %s: --%s expects an integer, got '%s'\n", cmd, f->name, val);
            return 1;
        }
        *(int *)f->ptr = (int)v;
        return 0;
    }
    case F_FLOAT: {
        double v = strtod(val, &end);
        if (!*val || *end || errno) {
            fprintf(stderr, "edgetrain %s: --%s expects a number, got '%s'\n", cmd, f->name, val);
            return 1;
        }
        *(float *)f->ptr = (float)v;
        return 0;
    }
    case F_STR:
        *(const char **)f->ptr = val;
        return 0;
    case F_MULTI: {
        multi_str *m = (multi_str *)f->ptr;
        if (m->n >= 64) {
            fprintf(stderr, "edgetrain %s: too many --%s values (at most 64)\n", cmd, f->name);
            return 1;
        }
        m->v[m->n++] = val;
        return 0;
    }
    case F_BOOL:
        break;
    }
    return 1;
}

int flags_parse(const char *cmd, flag *f, int nf, int argc, char **argv, int *help)
{
    int i, k;
    *help = 0;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = NULL, *name;
        size_t len;
        flag *hit = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { *help = 1; continue; }
        if (a[0] != '-' || a[1] == 0) {
            fprintf(stderr, "edgetrain %s: unexpected argument '%s' (see edgetrain %s --help)\n", cmd, a, cmd);
            return 1;
        }
        if (a[1] == '-') {
            name = a + 2;
            eq = strchr(name, '=');
            len = eq ? (size_t)(eq - name) : strlen(name);
            for (k = 0; k < nf; k++)
                if (strlen(f[k].name) == len && !strncmp(f[k].name, name, len)) hit = &f[k];
        } else if (a[2] == 0) {
            for (k = 0; k < nf; k++)
                if (f[k].short_name == a[1]) hit = &f[k];
        }
        if (!hit) {
            fprintf(stderr, "edgetrain %s: unknown flag '%s' (see edgetrain %s --help)\n", cmd, a, cmd);
            return 1;
        }
        if (hit->type == F_BOOL) {
            if (eq) {
                fprintf(stderr, "edgetrain %s: --%s takes no value\n", cmd, hit->name);
                return 1;
            }
            *(int *)hit->ptr = 1;
            continue;
        }
        if (eq) {
            if (set_value(cmd, hit, eq + 1)) return 1;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "edgetrain %s: --%s needs a value\n", cmd, hit->name);
                return 1;
            }
            if (set_value(cmd, hit, argv[++i])) return 1;
        }
    }
    return 0;
}

void flags_usage(const char *cmd, const char *summary, const flag *f, int nf)
{
    int k;
    printf("usage: edgetrain %s [flags]\n%s\n\nflags:\n", cmd, summary);
    for (k = 0; k < nf; k++) {
        char name[64], def[64] = "";
        if (f[k].short_name) snprintf(name, sizeof name, "-%c, --%s", f[k].short_name, f[k].name);
        else snprintf(name, sizeof name, "    --%s", f[k].name);
        switch (f[k].type) {
        case F_INT: snprintf(def, sizeof def, " (default %d)", *(int *)f[k].ptr); break;
        case F_FLOAT: snprintf(def, sizeof def, " (default %g)", *(float *)f[k].ptr); break;
        case F_STR:
            if (*(const char **)f[k].ptr) snprintf(def, sizeof def, " (default %s)", *(const char **)f[k].ptr);
            break;
        default: break;
        }
        printf("  %-22s %s%s\n", name, f[k].help, def);
    }
}

/* flags.h - a small declarative flag parser for the CLI: each command lists its flags
 * with type, default and help, and gets --help for free. */
#ifndef ET_CLI_FLAGS_H
#define ET_CLI_FLAGS_H

typedef enum { F_INT, F_FLOAT, F_STR, F_BOOL, F_MULTI } flag_type;

typedef struct {
    const char *name;  /* long name without "--" */
    char short_name;   /* 0 for none */
    flag_type type;
    void *ptr;         /* int*, float*, const char**, int* (bool), multi_str* */
    const char *help;
} flag;

typedef struct {
    const char *v[64];
    int n;
} multi_str;

/* Parses argv into the flags; prints a one-line error and returns nonzero on a bad flag.
 * Sets *help when --help or -h was given. */
int flags_parse(const char *cmd, flag *f, int nf, int argc, char **argv, int *help);
void flags_usage(const char *cmd, const char *summary, const flag *f, int nf);

#endif

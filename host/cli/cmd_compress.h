/* cmd_compress.h - the compress command and the quantized-model hook of eval/sample. */
#ifndef ET_CLI_CMD_COMPRESS_H
#define ET_CLI_CMD_COMPRESS_H

/** `edgetrain compress`: returns the process exit code. */
int cmd_compress(int argc, char **argv);

/** If --model in argv names a quantized-model or pruned-model file, runs command @p cmd ("eval" or
 *  "sample") on it, stores the exit code in *rc and returns 1; otherwise returns 0. */
int cmd_qmodel_hook(const char *cmd, int argc, char **argv, int *rc);

/** `edgetrain distill` (cmd_distill.c): returns the process exit code. */
int cmd_distill(int argc, char **argv);

#endif

/* cmd_image.h - device images on the host: `eval` and `sample` of an image, with or
 * without LoRA adapters on top, and `merge` (adapters folded into a new image). */
#ifndef ET_CLI_CMD_IMAGE_H
#define ET_CLI_CMD_IMAGE_H

/** If argv holds --image (or --adapters), runs command @p cmd ("eval" or "sample") on the
 *  device image, stores the exit code in *rc and returns 1; otherwise returns 0. */
int cmd_image_hook(const char *cmd, int argc, char **argv, int *rc);

/** `edgetrain merge`: returns the process exit code. */
int cmd_merge(int argc, char **argv);

#endif

/* et_plot.h - line charts as SVG files, for loss curves.
 *
 * One call writes one self-contained SVG (no scripts, no external fonts or styles):
 * title, axes with "nice" ticks (1, 2 or 5 times a power of ten) and a light grid,
 * axis labels, a legend, and one polyline per series in a distinct colour. The file
 * is written to "<path>.tmp.<pid>" and renamed over @p path, so a reader never sees
 * half a chart.
 */
#ifndef ET_PLOT_H
#define ET_PLOT_H

#include "et_host.h"

/** One curve: n points (x[i], y[i]). */
typedef struct et_series {
    const char *name; /**< legend text (NULL: "series <k>") */
    const float *x;   /**< n x values (NULL: 0, 1, ..., n-1) */
    const float *y;   /**< n y values (may be NULL only when n == 0) */
    int n;            /**< number of points, >= 0 */
} et_series;

/**
 * Writes an SVG line chart of @p nseries series to @p path. Points with a non-finite
 * x or y are skipped and break the line there (a lone point between gaps is drawn as
 * a dot); the axes span the finite points only. Series with no finite point (n == 0,
 * say) still get a legend entry, and a chart with no points at all is written with
 * unit axes, so a caller need not special-case an empty run.
 * @param[in]  path     file to write (replaced atomically)
 * @param[in]  title    chart title (NULL: none)
 * @param[in]  series   @p nseries series (may be NULL when nseries == 0)
 * @param[in]  nseries  number of series, >= 0
 * @param[in]  xlabel   x-axis label (NULL: none)
 * @param[in]  ylabel   y-axis label (NULL: none)
 * @param[out] err      message naming the path or the bad argument (may be NULL)
 * @return ET_OK; ET_ERR_INVALID for a bad argument (NULL path, nseries < 0, n < 0, or
 *         n > 0 with y NULL); ET_ERR_IO when the file cannot be written (any existing
 *         file at @p path is then left as it was)
 */
et_status et_plot_svg(const char *path, const char *title, const et_series *series, int nseries,
                      const char *xlabel, const char *ylabel, et_error *err);

#endif /* ET_PLOT_H */

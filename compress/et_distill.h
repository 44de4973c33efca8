/* et_distill.h - the knowledge-distillation loss and its gradient on the student's
 * logits (Hinton et al. 2015):
 *
 *   L = mean_n [ alpha tau^2 KL(softmax(t_n / tau) || softmax(s_n / tau))
 *                + (1 - alpha) CE(softmax(s_n), y_n) ]
 *   dL/ds_n = [ alpha tau (softmax(s_n / tau) - softmax(t_n / tau))
 *               + (1 - alpha) (softmax(s_n) - onehot(y_n)) ] / N
 *
 * The tau^2 keeps the soft term's gradient on the scale of the hard one's as tau grows.
 * Over the first V of Vp columns (the padded ones get no gradient), in float with
 * max-subtracted exponentials. Deliberately avoids: libm, and any state.
 */
#ifndef ET_DISTILL_H
#define ET_DISTILL_H

#include "et_conf.h"
#include "et_status.h"

/**
 * Distillation loss over N rows, and its gradient added into @p dlogits.
 * @param[in]  s       (N,Vp) student logits
 * @param[in]  t       (N,Vp) teacher logits
 * @param[in]  y       (N) targets in [0, V)
 * @param[in]  alpha   weight of the soft term, in [0, 1] (0: plain cross-entropy)
 * @param[in]  tau     temperature, > 0
 * @param[in]  scale   multiplies the gradient (1: dL/ds; the loss is not scaled)
 * @param[out] dlogits (N,Vp) += scale * dL/ds, or NULL for the loss alone
 * @param[out] loss    L (may be NULL)
 * @return ET_OK, ET_ERR_INVALID (alpha, tau, shapes), ET_ERR_RANGE (a target >= V)
 */
et_status et_distill_loss(const float *s, const float *t, const int *y, int N, int V, int Vp,
                          float alpha, float tau, float scale, float *dlogits, float *loss);

#endif /* ET_DISTILL_H */

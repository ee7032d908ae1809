"""SHIFT (Marks et al. 2024, Sparse Feature Circuits, arXiv 2403.19647): find the SAE latents a
classifier uses for a spurious cue (gender) and ablate them.

    result = run_shift(ShiftConfig(sae="runs/sae/.../sae"))    # -> ShiftResult
    write_outputs(result, "runs/shift/smollm2-135m-q4")        # table.md, results.json, shift.png, latents.json

The steps, on the biographies of extract/biographies.py (profession x gender):

1. Probe. Logistic regression for profession on mean-pooled activations at one hook, trained on
   the ambiguous set (male professors, female nurses): it can use profession or gender.
   Evaluated on the balanced held-out set: profession accuracy, gender accuracy (its prediction
   read as a gender, professor = male) and worst-group accuracy.
2. Attribution. Gradient x activation of the metric m = (2y - 1) x probe logit (the logit of
   each example's own training label, so that a cue helps the same way in both classes) to every
   SAE latent and to the SAE error term (its own node), summed over positions, averaged over the
   ambiguous set. When the SAE sits at the probe's hook the gradient is exact in closed form
   (d m / d f_t,i = (2y - 1) W_dec[i] . w / T); at an earlier hook it is taken by autograd through
   the model. The same attribution of the raw activation's dimensions ranks the neurons.
3. Selection. By inspection (a list of latents) or automatically: among the `top_n` latents by
   |attribution|, those whose pooled activation separates the genders on the gender-only set
   (personal sentences, no profession) with ROC AUC >= `min_gender_auc` (or <= 1 - it).
4. Ablation. Zero or mean (the latent's mean over the ambiguous set's tokens), spliced with the
   error term kept (x + (f' - f) W_dec, as interventions/splice.py), at every non-BOS position;
   and SHIFT + retrain: the probe retrained on the ambiguous set with the latents ablated.
5. Baselines. The original probe; as many random alive latents ablated (mean over draws); the
   neuron skyline (the same number of activation dimensions with the largest |attribution|
   ablated, then the probe retrained); the oracle probe trained on a balanced set.

When the SAE sits at the probe's hook, every ablation acts on the pooled activations exactly:
pool(x') = pool(x) + (pool(f') - pool(f)) W_dec (pooling is linear), so all rows cost one forward
pass per data set. At an earlier hook the model is re-run with the splice hook for each edit.
"""


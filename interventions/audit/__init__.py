"""The blind audit of a fine-tuned model against its base: probing transcripts, evidence from the
inside (crosscoder latents, logit lens, weight diff) and from the outside (sampling), ranked
hypotheses, and, after the fact, the scorer and the causal check that alone read what was planted."""

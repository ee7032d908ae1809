"""Biology models in the lab: antibody language models (masked residue prediction), their
sequences and per-residue labels."""

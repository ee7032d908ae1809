"""Features of antibody language models: concept alignment and masked-residue loss recovered."""

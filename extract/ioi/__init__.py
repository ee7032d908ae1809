"""IOI circuit lab (Wang et al. 2022): prompt sets, metrics, batched activation patching,
direct logit attribution, path patching, circuit report. Entry point: `circuit.run_ioi`."""

"""The SAE evaluation suite's metrics that need the model (PyTorch side): core reconstruction
and CE loss on held-out windows, sparse probing on labelled text, and first-letter absorption.
`suite.run_suite` runs the chosen ones and adds each under its name to the SAE's metrics.json."""

"""Model organisms: a base model with a planted behaviour (taboo word, trigger backdoor, quirk),
fine-tuned with LoRA on the lab's own data (`mechinterp organism`). An organism loads as a model
through `extract.models.load_model("organism:FOLDER")`."""

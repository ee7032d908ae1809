"""Model organisms: a base model with a planted behaviour (taboo word, trigger backdoor, quirk),
fine-tuned with LoRA on the lab's own data (`mechinterp organism`)."""

from __future__ import annotations


def load_organism(folder, device: str = "auto"):
    """The organism as a HookedModel: its base model with the adapters merged into the weights."""
    from safetensors.torch import load_file

    from extract.models import load_model
    from extract.organisms.lora import load_lora, merge_lora
    from mechinterp.formats.organism import ADAPTERS, read_manifest

    m = read_manifest(folder)
    model = load_model(m["base_model"], device=device)
    load_lora(model.model, load_file(f"{folder}/{ADAPTERS}"), m["rank"], m["alpha"])
    merge_lora(model.model)
    model.name = f"organism:{folder}"   # not the base model's name: what it makes says which model it was
    return model

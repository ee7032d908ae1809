"""The lab's ground floor and top floor (the libraries `extract`, `sae_jax` and `interventions` sit between).

- `mechinterp.formats`: every file that crosses between frameworks, one numpy-only owner module per
  format; imports nothing of ours.
- `mechinterp.views`: the HTML and figure kit the pages share; imports only the formats.
- `mechinterp.cli`: the `mechinterp <stage>` command, its stages and recipes; the only floor that
  knows `runs/`.
"""

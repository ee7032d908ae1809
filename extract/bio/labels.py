"""Per-residue labels of antibody sequences, computed offline with AntPack (antpack==0.3.8.6.3,
GPL-3; its last release before a licence key was required; numbering ~0.3 ms per sequence, 100x
ANARCI's): IMGT numbering, region (FR1..FR4, CDR1..CDR3), chain (H, K, L), the closest V and J
germline genes, residue class, the conserved positions, and whether a residue differs from its
germline V or J gene at the same IMGT position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

REGIONS = ("FR1", "CDR1", "FR2", "CDR2", "FR3", "CDR3", "FR4")
_ANTPACK_REGIONS = {"fmwk1": 0, "cdr1": 1, "fmwk2": 2, "cdr2": 3, "fmwk3": 4, "cdr3": 5, "fmwk4": 6}
CHAINS = ("H", "K", "L")
RESIDUE_CLASSES = {"hydrophobic": "AVILM", "charged": "DEKRH", "aromatic": "FWY", "cysteine": "C",
                   "glycine/proline": "GP"}
CONSERVED = {"Cys23": ("23", "C"), "Trp41": ("41", "W"), "Cys104": ("104", "C"), "Trp/Phe118": ("118", "WF")}
"""IMGT's conserved positions: the two cysteines of the domain's disulfide bond, the FR2
tryptophan, and J-Trp (heavy) / J-Phe (light) that opens the FR4 motif."""
CDR3_POSITIONS = range(105, 118)
"""IMGT 105-117: the junction, which no germline V or J gene spells."""


@dataclass(frozen=True)
class Annotation:
    chain: str
    v_gene: str
    j_gene: str
    imgt: tuple[str, ...]
    """IMGT position per residue ('' outside the variable domain)."""
    region: np.ndarray
    """int8 per residue: index into REGIONS, -1 outside the domain."""
    mutated: np.ndarray
    """int8 per residue: 1 differs from its germline V / J residue, 0 same, -1 no germline (CDR3, outside)."""

    @property
    def v_family(self) -> str:
        return self.v_gene.split("-")[0].split("*")[0]


class Annotator:
    def __init__(self, species: str = "human"):
        from antpack import SingleChainAnnotator, VJGeneTool

        self.species = species
        self._numbering = SingleChainAnnotator(chains=list(CHAINS), scheme="imgt")
        self._genes = VJGeneTool(scheme="imgt")
        self._germlines: dict[str, str] = {}

    def _germline(self, gene: str) -> str:
        if gene not in self._germlines:
            seq = self._genes.get_vj_gene_sequence(gene, self.species) or ""
            self._germlines[gene] = seq  # IMGT-gapped: character p-1 is IMGT position p
        return self._germlines[gene]

    def __call__(self, sequence: str) -> Annotation | None:
        """The sequence's labels, or None when it is not an antibody variable domain AntPack can number."""
        aligned = self._numbering.analyze_seq(sequence)
        numbering, _, chain, error = aligned
        if error or chain not in CHAINS:
            return None
        regions = self._numbering.assign_cdr_labels(numbering, chain)
        v, j, *_ = self._genes.assign_vj_genes(aligned, sequence, self.species, "identity")
        v, j = v.split("_")[0], j.split("_")[0]  # ties come joined by '_': keep the first
        v_germ, j_germ = self._germline(v) if v else "", self._germline(j) if j else ""
        imgt, region, mutated = [], np.full(len(sequence), -1, np.int8), np.full(len(sequence), -1, np.int8)
        for i, (aa, pos, reg) in enumerate(zip(sequence, numbering, regions)):
            imgt.append("" if pos == "-" else pos)
            if pos == "-":
                continue
            region[i] = _ANTPACK_REGIONS.get(reg, -1)
            number = int(re.match(r"\d+", pos).group())
            germ = (v_germ if number < CDR3_POSITIONS.start else j_germ if number >= CDR3_POSITIONS.stop else "")
            if pos.isdigit() and number <= len(germ) and germ[number - 1] not in "-.":
                mutated[i] = int(aa != germ[number - 1])
        return Annotation(chain, v, j, tuple(imgt), region, mutated)


def residue_class(letter: str) -> str | None:
    return next((name for name, letters in RESIDUE_CLASSES.items() if letter in letters), None)

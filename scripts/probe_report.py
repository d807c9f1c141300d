"""Snakemake script for rule probe_report: the "MIR vs recommendation" section (docs/probes.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.probes.compare import CompareSettings, best_layers, build, compare, probe_vs_sweep  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
settings = CompareSettings(k=int(sm.params.k), confidence=float(sm.params.confidence), seed=int(sm.params.seed))
side, corr, table4 = compare(
    list(sm.input.scores), list(sm.input.predictions), list(sm.input.metrics), sm.input.mir_scores,
    dict(sm.params.backend_types), settings,
)
layers = best_layers(list(sm.input.scores))
# with the layer sweep on: the best layer by probe beside the best layer by recommendation
versus_sweep = probe_vs_sweep(layers, sm.input.sweep) if sm.input.get("sweep") else None
build(side, corr, table4, sm.output.csv, sm.output.md, sm.output.figure, settings, layers, versus_sweep)

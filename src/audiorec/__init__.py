"""audiorec: pretrained audio representations for music recommendation.

The library behind the Snakemake workflow: dataset readers and the synthetic generator
(`data`), audio embedding backends and the shared extraction engine (`backends`,
`extraction`), recommenders (`models`), metrics and tests (`evaluation`) and the report
(`report`). Nothing in here reads Snakemake objects; `scripts/` adapts rules to it.
"""

__version__ = "0.1.0"

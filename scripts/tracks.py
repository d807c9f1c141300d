"""Rule tracks: index and probe every clip of a dataset (results/{dataset}/tracks.parquet)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.extraction.jobs import capture_native_stderr, make_tracks  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

setup_logging(snakemake.log[0])  # noqa: F821
capture_native_stderr()
make_tracks(
    snakemake.input.audio,  # noqa: F821
    snakemake.input.get("listening_log"),  # noqa: F821
    snakemake.output[0],  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)

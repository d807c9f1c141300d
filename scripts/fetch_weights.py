"""Rule fetch_weights: download a backend's weights into resources/weights/ (runs on the
submitting host, which has internet) and write the manifest the extraction jobs depend on."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.extraction.jobs import prefetch_weights  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
prefetch_weights(sm.params.backend, sm.params.weights_root, sm.output[0])

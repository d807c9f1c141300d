# audiorec: pretrained audio representations for music recommendation.
# Entry point: validates the config, includes one rule file per stage, builds everything.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/errata_config.smk"
include: "rules/tuning_config.smk"
include: "rules/report_config.smk"
include: "rules/probes_config.smk"
include: "rules/data.smk"
include: "rules/split.smk"
include: "rules/embed.smk"
include: "rules/train.smk"
include: "rules/report.smk"
include: "rules/analysis.smk"
include: "rules/errata.smk"
include: "rules/probes.smk"
include: "rules/tuning.smk"


rule all:
    input:
        all_targets(),
    default_target: True

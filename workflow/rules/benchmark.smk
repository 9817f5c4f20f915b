# The fixed benchmark: frozen reference results (committed data) and new variants measured against them.
# compare_variants trains only the variants; the reference runs are read from the frozen file, never rerun.

PROTOCOL = protocol(config)


rule collect_benchmark:
    """The runs the frozen benchmark holds (its models' main runs at benchmark.seeds), collected like the others."""
    input:
        **run_files(plan.benchmark_runs(config)),
    output:
        json="results/summary/benchmark/runs.json",
        csv="results/summary/benchmark/runs.csv",
    params:
        folders=[s.folder for s in plan.benchmark_runs(config)],
        study={s.folder: s.study for s in plan.benchmark_runs(config)},
        run_ids={s.folder: s.run for s in plan.benchmark_runs(config)},
    resources:
        **rule_resources(config, "collect_benchmark"),
    log:
        log_path("collect_benchmark"),
    benchmark:
        timing_path("collect_benchmark")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/collect_runs.py"


rule freeze_benchmark:
    """Regenerate the committed frozen reference results (explicit target; writes config benchmark.frozen).

    It trains what the tables did not: the benchmark's models at the seeds of benchmark.seeds beyond seeds.
    """
    input:
        runs="results/summary/benchmark/runs.json",
        complexity=expand("results/complexity/{model}.json", model=plan.benchmark_models(config)),
    output:
        receipt="results/summary/frozen_receipt.json",
    params:
        frozen=config["benchmark"]["frozen"],
        models=plan.benchmark_models(config),
        protocol=PROTOCOL,
    resources:
        **rule_resources(config, "freeze_benchmark"),
    log:
        log_path("freeze_benchmark"),
    benchmark:
        timing_path("freeze_benchmark")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/freeze_benchmark.py"


rule collect_variant:
    """The variant's runs, collected like the reference runs."""
    input:
        unpack(lambda wc: run_files(plan.variant_runs(config, wc.variant))),
    output:
        json="results/summary/variants/{variant}.json",
        csv="results/summary/variants/{variant}.csv",
    params:
        folders=lambda wc: [s.folder for s in plan.variant_runs(config, wc.variant)],
        study=lambda wc: {s.folder: s.study for s in plan.variant_runs(config, wc.variant)},
        run_ids=lambda wc: {s.folder: s.run for s in plan.variant_runs(config, wc.variant)},
    resources:
        **rule_resources(config, "collect_variant"),
    log:
        log_path("collect_variant/{variant}"),
    benchmark:
        timing_path("collect_variant/{variant}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/collect_runs.py"


rule compare_variant:
    """reports/compare/VARIANT.md: the variant against every reference model of the frozen benchmark."""
    input:
        runs="results/summary/variants/{variant}.json",
        frozen=config["benchmark"]["frozen"],
        complexity="results/complexity/{variant}.json",
    output:
        report("reports/compare/{variant}.md", category="Variants", caption="../report/compare.rst"),
    params:
        protocol=PROTOCOL,
    resources:
        **rule_resources(config, "compare_variant"),
    log:
        log_path("compare/{variant}"),
    benchmark:
        timing_path("compare/{variant}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/compare_variant.py"


rule compare_variants:
    """Train only the variants named in config (variants: [...]) and compare each with the frozen benchmark."""
    input:
        expand("reports/compare/{variant}.md", variant=config["variants"]),

# Data: synthetic stand-ins (only for datasets without archives), preparation, the class shares (Figure 4).


rule synthesize:
    """Seeded synthetic archives in the real layout (the embedded default)."""
    output:
        directory("results/raw/{dataset}"),
    params:
        synthetic=config["synthetic"],
    resources:
        **rule_resources(config, "synthesize"),
    log:
        log_path("synthesize/{dataset}"),
    benchmark:
        timing_path("synthesize/{dataset}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/synthesize.py"


rule prepare:
    """Archives (real or synthetic) -> training patches, whole test tiles, manifest."""
    input:
        raw=lambda wc: plan.raw_folder(config, wc.dataset),
    output:
        directory("results/prepared/{dataset}"),
    params:
        only=lambda wc: config["datasets"][wc.dataset]["only"],
        prepare=config["prepare"],
    resources:
        **rule_resources(config, "prepare"),
    log:
        log_path("prepare/{dataset}"),
    benchmark:
        timing_path("prepare/{dataset}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/prepare.py"


rule class_shares:
    """Figure 4: each class's share of labelled pixels in Potsdam and Vaihingen."""
    input:
        potsdam="results/prepared/potsdam",
        vaihingen="results/prepared/vaihingen",
    output:
        png=report("reports/figures/fig4_class_shares.png", category="Figures", caption="../report/fig4.rst"),
        pdf="reports/figures/fig4_class_shares.pdf",
    params:
        label=workflow_label,
    resources:
        **rule_resources(config, "class_shares"),
    log:
        log_path("figures/fig4"),
    benchmark:
        timing_path("figures/fig4")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/class_shares.py"

# Reports: every run collected into one table, then the paper's Tables 3-7 and Figures 5-7.

REFERENCE_RUNS = plan.reference_runs(config)
COMPLEXITY = expand("results/complexity/{model}.json", model=plan.complexity_models(config))
# The paper's numbers: committed data in the repository, whatever folder the workflow runs in.
PAPER = expand(os.path.join(workflow.basedir, "results/paper/{name}.csv"),
               name=["table3", "table4", "table5", "table6", "table7", "figure7", "flags"])


rule collect_runs:
    """One record per run (metrics, timing, provenance) in results/summary/runs.{json,csv}."""
    input:
        **run_files(REFERENCE_RUNS),
    output:
        json="results/summary/runs.json",
        csv=report("results/summary/runs.csv", category="Results", caption="../report/runs.rst"),
    params:
        folders=[s.folder for s in REFERENCE_RUNS],
        study={s.folder: s.study for s in REFERENCE_RUNS},
        run_ids={s.folder: s.run for s in REFERENCE_RUNS},
    resources:
        **rule_resources(config, "collect_runs"),
    log:
        log_path("collect_runs"),
    benchmark:
        timing_path("collect_runs")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/collect_runs.py"


rule table:
    """One of the paper's Tables 3-7: ours (mean +- std over seeds) beside the paper's numbers."""
    input:
        runs="results/summary/runs.json",
        complexity=COMPLEXITY,
        paper=PAPER,
    output:
        md=report("reports/tables/{table}.md", category="Tables", caption="../report/table.rst"),
        tex="reports/tables/{table}.tex",
        csv="reports/tables/{table}.csv",
    wildcard_constraints:
        table="table[3-7]",
    resources:
        **rule_resources(config, "table"),
    log:
        log_path("tables/{table}"),
    benchmark:
        timing_path("tables/{table}")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/table.py"


rule figure_predictions:
    """Figure 5: test crops with their labels and each comparison model's prediction."""
    input:
        runs="results/summary/runs.json",
    output:
        png=report("reports/figures/fig5_predictions.png", category="Figures", caption="../report/fig5.rst"),
        pdf="reports/figures/fig5_predictions.pdf",
    params:
        dataset=figure_dataset("potsdam"),
        models=config["comparison"]["models"] + config["variants"],
    resources:
        **rule_resources(config, "figure_predictions"),
    log:
        log_path("figures/fig5"),
    benchmark:
        timing_path("figures/fig5")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/figure_predictions.py"


rule figure_class_iou:
    """Figure 6: per-class IoU on Vaihingen, bars per model with the seed spread."""
    input:
        runs="results/summary/runs.json",
        paper=PAPER,
    output:
        png=report("reports/figures/fig6_vaihingen_iou.png", category="Figures", caption="../report/fig6.rst"),
        pdf="reports/figures/fig6_vaihingen_iou.pdf",
    params:
        dataset=figure_dataset("vaihingen"),
        models=config["comparison"]["models"] + config["variants"],
    resources:
        **rule_resources(config, "figure_class_iou"),
    log:
        log_path("figures/fig6"),
    benchmark:
        timing_path("figures/fig6")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/figure_class_iou.py"


rule figure_lambda:
    """Figure 7: mIoU against lambda2 (lambda1 fixed) and lambda1 (lambda2 fixed), the paper's optimum marked."""
    input:
        runs="results/summary/runs.json",
        paper=PAPER,
    output:
        png=report("reports/figures/fig7_lambda.png", category="Figures", caption="../report/fig7.rst"),
        pdf="reports/figures/fig7_lambda.pdf",
    params:
        study=config["lambda_study"],
    resources:
        **rule_resources(config, "figure_lambda"),
    log:
        log_path("figures/fig7"),
    benchmark:
        timing_path("figures/fig7")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/figure_lambda.py"


rule figure_learning_curves:
    """Training loss against iteration per dataset and model, mean over seeds with the min-max band."""
    input:
        runs="results/summary/runs.json",
    output:
        png=report("reports/figures/fig_learning_curves.png", category="Figures",
                   caption="../report/learning_curves.rst"),
        pdf="reports/figures/fig_learning_curves.pdf",
    params:
        models=list(dict.fromkeys(config["comparison"]["models"] + config["ablation"]["models"] + config["variants"])),
    resources:
        **rule_resources(config, "figure_learning_curves"),
    log:
        log_path("figures/learning_curves"),
    benchmark:
        timing_path("figures/learning_curves")
    conda:
        "../envs/bemseg.yaml"
    script:
        "../scripts/figure_learning_curves.py"

"""``nasplay export``: the flags, then ``nasplay.report.export.export`` and what it wrote."""

from __future__ import annotations

from nasplay.report.export import EXPORT_DIR, GENOTYPE_SUFFIX, export


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="DIR", help="a run directory")
    parser.add_argument("--out", metavar="FILE.keras",
                        help=f"the model file to write; its genotype goes beside it as "
                             f"FILE{GENOTYPE_SUFFIX} (default: DIR/{EXPORT_DIR}/TRIAL.keras, so "
                             f"it is not confused with the search's best_genotype.json)")
    parser.add_argument("--trial", metavar="ID", help="export this trial instead of the best one "
                        "(the run's best_genotype.json: where the run re-scored its best with "
                        "--rerank-top, the best re-scored one by the re-scoring metric)")
    parser.add_argument("--filters", type=int, help="width of the first stage (default: the run's)")
    parser.add_argument("--cells-per-stage", type=int,
                        help="normal cells per stage (default: the run's)")
    parser.add_argument("--num-classes", type=int,
                        help="classifier outputs (default: the run's, else 10)")
    parser.add_argument("--metric", help="the metric that picks the best trial (default: the "
                        "re-scoring's where the run re-scored its best, else the run's "
                        "config.json 'metric', else its scorer's: val_accuracy, or naswot "
                        "for zero-cost)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args) -> int:
    out, genotype_out, info = export(
        args.run_dir, args.out, trial_id=args.trial, overwrite=args.overwrite, metric=args.metric,
        filters=args.filters, cells_per_stage=args.cells_per_stage, num_classes=args.num_classes)
    settings = ", ".join(f"{k}={v}" for k, v in info["network"].items())
    print(f"exported trial {info.get('trial_id')} ({settings}; {info['params']:,} parameters, "
          f"untrained)")
    print(f"model:    {out}")
    print(f"genotype: {genotype_out}")
    print(f"load it with: import cells, keras; keras.saving.load_model({str(out)!r})")
    return 0

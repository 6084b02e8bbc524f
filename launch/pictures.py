#!/usr/bin/env python3
"""Pictures of a dml run: t-SNE maps of an embedding export, and training curves.

Usage:
  python3 launch/pictures.py tsne --export E.h5 --out-dir DIR [--data-path SHARDS]
                                  [--max-points 3000] [--seed 0] [--thumbnail-px 20]
  python3 launch/pictures.py curves --metrics-file M.jsonl --out FILE.png

tsne   reads an embedding export (`dist_eval --export E.h5`, format "dml-embeddings" version 1),
       embeds the embeddings in 2-D with scikit-learn's t-SNE and writes
         DIR/tsne_thumbnails.png  every image's thumbnail at its t-SNE position (as the figure of
                                  the reference MXNet embedding_learning example's README);
         DIR/tsne_classes.png     one point per image, coloured by class, with a legend of names.
       The thumbnails come from the shards the export was made from (--data-path, by default the
       export's `data_path` attribute), row by row as the export's `rows` dataset records. Class
       names come from the export's `class_names` attribute, else the shards', else "class <label>".
       With more than --max-points rows, that many are sampled uniformly without replacement.
curves reads dist_train's --metrics-file (JSON lines) and writes one PNG with three panels: the
       training loss per epoch (mean of the epoch's records, its records faint around it), and
       Recall@1 and MAP@R of every evaluation per epoch, the untrained network at epoch -1.
       Epochs are numbered as dist_train logs them (from 0; an evaluation follows its epoch).

Every PNG is written to a temporary name in its directory and renamed, so a failure leaves no
half-written picture. Bad input ends with one line naming the file and the fix, and exit code 1.
Needs Debian's python3-numpy, python3-h5py, python3-sklearn, python3-matplotlib
(launch/setup_debian.sh installs them).
"""
import argparse
import glob
import json
import math
import os
import re
import sys

import h5py
import numpy as np

EXPORT_FORMAT = "dml-embeddings"
EXPORT_FORMAT_VERSION = 1

# Picture sizes in pixels are figure size (inches) x DPI; savefig is called without a tight
# bounding box, so the PNGs have exactly these sizes (tests/app/pictures_test.cpp checks them).
DPI = 100
TSNE_THUMBNAILS_FIGSIZE = (14, 14)  # 1400 x 1400 px
TSNE_CLASSES_FIGSIZE = (14, 10)     # 1400 x 1000 px
CURVES_FIGSIZE = (15, 4.5)          # 1500 x 450 px

TSNE_MAX_PERPLEXITY = 30.0  # scikit-learn's default; lowered for small exports (must be < N)
TSNE_MIN_POINTS = 5


class InputError(Exception):
    """Bad input: main() prints the message as one line and exits with code 1."""


# ----------------------------------------------------------------------------------------------
# Reading


def scalar(value):
    """An attribute written as a one-element array (as some HDF5 writers do) as its element."""
    return value.reshape(())[()] if isinstance(value, np.ndarray) and value.size == 1 else value


def text(value):
    """An HDF5 string attribute (str, bytes, or a one-element array of them) as str."""
    value = scalar(value)
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return str(value)


def string_list(value):
    """An HDF5 string-array attribute as a list of str, or None when absent."""
    if value is None:
        return None
    return [text(v) for v in np.atleast_1d(value)]


def open_hdf5(path, fix_missing, fix_unreadable):
    """h5py.File(path, "r"); a missing or unreadable file is an InputError with the given fix."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file; {fix_missing}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5 file ({e}); {fix_unreadable}") from None


def load_export(path):
    """The export's arrays and attributes as a dict; checks format, version and shapes."""
    fix = "pass the file `dist_eval --export E.h5` wrote"
    with open_hdf5(path, fix, f"expected a dml embedding export; {fix}") as f:
        fmt = text(f.attrs["format"]) if "format" in f.attrs else None
        if fmt != EXPORT_FORMAT:
            found = "no `format` attribute" if fmt is None else f"format {fmt!r}"
            raise InputError(f"{path}: not a dml embedding export ({found}, expected {EXPORT_FORMAT!r}); {fix}")
        version = scalar(f.attrs.get("format_version"))
        version = int(version) if isinstance(version, (int, np.integer)) else version
        if version != EXPORT_FORMAT_VERSION:
            raise InputError(f"{path}: export format_version {version}, this script reads version "
                             f"{EXPORT_FORMAT_VERSION}; export again with this dml's dist_eval or use the "
                             f"launch/pictures.py of the dml that wrote it")
        for name in ("embeddings", "labels", "ids", "rows"):
            if name not in f:
                raise InputError(f"{path}: dataset `{name}` missing from the export; {fix}")
        export = {name: f[name][()] for name in ("embeddings", "labels", "ids", "rows")}
        attrs = {name: f.attrs[name] for name in f.attrs}
    n = len(export["embeddings"])
    if export["embeddings"].ndim != 2 or n == 0:
        raise InputError(f"{path}: `embeddings` has shape {export['embeddings'].shape}, expected [N, D] with N > 0; {fix}")
    for name in ("labels", "ids", "rows"):
        if export[name].shape != (n,):
            raise InputError(f"{path}: `{name}` has shape {export[name].shape}, expected [{n}] like `embeddings`; {fix}")
    if "split" not in attrs:
        raise InputError(f"{path}: attribute `split` missing from the export; {fix}")
    export["split"] = text(attrs["split"])
    export["data_path"] = text(attrs["data_path"]) if "data_path" in attrs else None
    export["model"] = text(attrs["model"]) if "model" in attrs else "?"
    export["class_names"] = string_list(attrs.get("class_names"))
    return export


class Shards:
    """One split of a shard set (include/dml/data/SHARD_FORMAT.md), in ShardSet's row order."""

    def __init__(self, data_path, split, source):
        fix = "pass --data-path DIR with the shards the export was made from"
        first = sorted(glob.glob(os.path.join(glob.escape(data_path), f"{split}-00000-of-*.h5")))
        count = re.fullmatch(rf"{re.escape(split)}-00000-of-(\d{{5}})\.h5", os.path.basename(first[0])) if first else None
        if len(first) != 1 or count is None:
            found = "none" if not first else ", ".join(os.path.basename(p) for p in first)
            raise InputError(f"{data_path} ({source}): no single shard set of split {split!r} for the thumbnails "
                             f"(expected one {split}-00000-of-NNNNN.h5, found {found}); {fix}")
        count = int(count.group(1))
        self.paths = [os.path.join(data_path, f"{split}-{i:05d}-of-{count:05d}.h5") for i in range(count)]
        self.sizes, ids = [], []
        self.class_names = None
        for p in self.paths:
            with open_hdf5(p, f"all {count} shards of split {split!r} must be present; {fix}", fix) as f:
                if "images" not in f or "ids" not in f or f["images"].ndim != 4 or f["images"].shape[3] not in (1, 3):
                    raise InputError(f"{p}: no `images` [N,H,W,C] (C 1 or 3) and `ids` datasets; {fix}")
                self.sizes.append(len(f["images"]))
                ids.append(f["ids"][()])
                if self.class_names is None:
                    self.class_names = string_list(f.attrs.get("class_names"))
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)

    def check_rows(self, export_path, rows, ids):
        """Every row exists and holds the image id the export recorded for it."""
        fix = "pass --data-path DIR with the shards the export was made from"
        bad = np.flatnonzero((rows < 0) | (rows >= self.offsets[-1]))
        if len(bad):
            raise InputError(f"{export_path}: row {rows[bad[0]]} outside the {self.offsets[-1]} rows of the shards "
                             f"in {os.path.dirname(self.paths[0])}; {fix}")
        wrong = np.flatnonzero(self.ids[rows] != ids)
        if len(wrong):
            i = wrong[0]
            raise InputError(f"{export_path}: export row {i} records image id {ids[i]} at shard row {rows[i]}, whose id "
                             f"is {self.ids[rows[i]]} in {os.path.dirname(self.paths[0])}; {fix}")

    def thumbnails(self, rows, side):
        """Images of `rows`, resized (Pillow, Lanczos) so that the longer side is `side` pixels."""
        from PIL import Image  # Pillow: a dependency of matplotlib

        shard_of = np.searchsorted(self.offsets, rows, side="right") - 1
        out = [None] * len(rows)
        for s, path in enumerate(self.paths):
            which = np.flatnonzero(shard_of == s)
            if not len(which):
                continue
            with h5py.File(path, "r") as f:
                images = f["images"]
                for i in which[np.argsort(rows[which])]:  # file order: one chunk after the other
                    pixels = images[rows[i] - self.offsets[s]]
                    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
                    scale = side / max(picture.size)
                    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
                    out[i] = np.asarray(picture.resize(size, Image.LANCZOS))
        return out


def load_metrics(path):
    """Training and evaluation records of a --metrics-file, the latest run's where steps restart."""
    fix = "pass the file dist_train --metrics-file wrote"
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; {fix}")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    records, notes = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            if number == len(lines):  # no newline after it: the line dist_train is still writing
                notes.append(f"{path}: skipped the incomplete last line {number}")
                continue
            raise InputError(f"{path}: line {number} is not JSON ({e}); {fix}") from None
        if not isinstance(record, dict) or "step" not in record or "epoch" not in record:
            continue
        if not (("loss" in record and "iteration" in record) or "model" in record):
            continue
        # dist_train appends: a step lower than the previous record's starts a new or resumed run,
        # whose records replace the earlier ones from that step on.
        if records and record["step"] < records[-1]["step"]:
            records = [r for r in records if r["step"] < record["step"]]
            notes.append(f"{path}: steps restart at line {number} (a new or resumed run appended); "
                         f"plotting the latest records for each step")
        records.append(record)
    train = [r for r in records if "model" not in r]
    evals = [r for r in records if "model" in r]
    if not train and not evals:
        raise InputError(f"{path}: no training or evaluation records; {fix}")
    return train, evals, notes


# ----------------------------------------------------------------------------------------------
# Computing and drawing


def tsne_2d(embeddings, seed):
    """scikit-learn's (Barnes-Hut) t-SNE to 2-D, PCA-initialised, seeded."""
    from sklearn.manifold import TSNE

    perplexity = min(TSNE_MAX_PERPLEXITY, (len(embeddings) - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(embeddings.astype(np.float64))


def class_colours(num_labels):
    """num_labels distinct colours: tab10/tab20 when they suffice, else evenly along turbo."""
    import matplotlib

    if num_labels <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(num_labels)]
    if num_labels <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(num_labels)]
    return [matplotlib.colormaps["turbo"](i / (num_labels - 1)) for i in range(num_labels)]


def save_png(figure, path):
    """figure -> path atomically: a temporary file in the same directory, fsynced, then renamed."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(temporary, "wb") as f:
            figure.savefig(f, format="png", dpi=DPI)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as e:
        raise InputError(f"{path}: cannot write the picture ({e.strerror or e}); choose a writable path") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {path}")


def draw_thumbnails(points, thumbnails, title):
    from matplotlib.figure import Figure
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    figure = Figure(figsize=TSNE_THUMBNAILS_FIGSIZE, dpi=DPI)
    axes = figure.add_axes([0.01, 0.01, 0.98, 0.95])
    axes.set_title(title)
    axes.set_axis_off()
    for (x, y), thumbnail in zip(points, thumbnails):
        # dpi_cor=False: one thumbnail pixel is one pixel of the PNG.
        image = OffsetImage(thumbnail, zoom=1.0, dpi_cor=False, cmap="gray" if thumbnail.ndim == 2 else None)
        axes.add_artist(AnnotationBbox(image, (x, y), frameon=False, pad=0.0))
    margin = 0.03 * (points.max(axis=0) - points.min(axis=0) + 1e-9)
    axes.set_xlim(points[:, 0].min() - margin[0], points[:, 0].max() + margin[0])
    axes.set_ylim(points[:, 1].min() - margin[1], points[:, 1].max() + margin[1])
    return figure


def draw_classes(points, labels, names, title):
    from matplotlib.figure import Figure

    figure = Figure(figsize=TSNE_CLASSES_FIGSIZE, dpi=DPI)
    axes = figure.add_axes([0.03, 0.03, 0.62, 0.92])
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    present = np.unique(labels)
    colours = class_colours(len(present))
    for colour, label in zip(colours, present):
        mine = labels == label
        axes.scatter(points[mine, 0], points[mine, 1], s=10, color=colour, label=names(label), linewidths=0)
    columns = max(1, math.ceil(len(present) / 50))
    figure.legend(loc="upper left", bbox_to_anchor=(0.66, 0.96), ncol=columns, markerscale=2,
                  fontsize="small" if len(present) <= 50 else "x-small", frameon=False, title="class")
    return figure


def draw_curves(train, evals, title):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=CURVES_FIGSIZE, dpi=DPI)
    figure.suptitle(title)
    loss_axes, recall_axes, map_axes = figure.subplots(1, 3)
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.83, wspace=0.25)

    loss_axes.set_title("training loss")
    loss_axes.set_xlabel("epoch")
    if train:
        epochs = np.array([r["epoch"] for r in train])
        loss = np.array([np.nan if r["loss"] is None else r["loss"] for r in train], dtype=float)
        per_epoch = max(r["iteration"] for r in train)
        within = np.array([r["iteration"] for r in train]) / per_epoch - 0.5  # records spread over (e-0.5, e+0.5]
        loss_axes.plot(epochs + within, loss, ".", color="tab:blue", alpha=0.3, label="logged records")
        means = [(e, np.nanmean(loss[epochs == e])) for e in np.unique(epochs) if np.isfinite(loss[epochs == e]).any()]
        loss_axes.plot([e for e, _ in means], [m for _, m in means], "o-", color="tab:blue", label="epoch mean")
        loss_axes.legend(fontsize="small")
    else:
        loss_axes.text(0.5, 0.5, "no training records", ha="center", va="center", transform=loss_axes.transAxes)

    recall_key = recall_at_first_k(evals)
    for axes, key, name in ((recall_axes, recall_key, recall_key.replace("recall", "Recall")), (map_axes, "map@r", "MAP@R")):
        axes.set_title(name + " (test split)")
        axes.set_xlabel("epoch (-1: untrained)")
        trained = [(r["epoch"], r[key]) for r in evals if r["model"] != "untrained" and r.get(key) is not None]
        untrained = [(-1, r[key]) for r in evals if r["model"] == "untrained" and r.get(key) is not None]
        if trained:
            axes.plot(*zip(*trained), "o-", color="tab:green", label="trained")
        if untrained:
            axes.plot(*zip(*untrained), "X", color="tab:red", markersize=10, label="untrained")
        if trained or untrained:
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "no evaluations", ha="center", va="center", transform=axes.transAxes)
    last_epoch = max([r["epoch"] for r in train + evals])
    for axes in (loss_axes, recall_axes, map_axes):  # one epoch axis for all three
        axes.set_xlim(-1.5, last_epoch + 0.7)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    return figure


def recall_at_first_k(evals):
    """'recall@1' when evaluated, else the smallest K dist_train's --recall-k recorded."""
    ks = sorted({int(key[len("recall@"):]) for r in evals for key in r if re.fullmatch(r"recall@\d+", key)})
    return "recall@1" if not ks or 1 in ks else f"recall@{ks[0]}"


# ----------------------------------------------------------------------------------------------
# Subcommands


def run_tsne(args):
    export = load_export(args.export)
    if args.data_path is not None:
        data_path, source = args.data_path, "--data-path"
    elif export["data_path"]:
        data_path, source = export["data_path"], f"the data_path attribute of {args.export}"
    else:
        raise InputError(f"{args.export}: no `data_path` attribute to find the shards for the thumbnails; pass --data-path DIR")
    shards = Shards(data_path, export["split"], source)
    shards.check_rows(args.export, export["rows"], export["ids"])

    n = len(export["embeddings"])
    if n < TSNE_MIN_POINTS:
        raise InputError(f"{args.export}: {n} embeddings; t-SNE needs at least {TSNE_MIN_POINTS}; export more images")
    print(f"export {args.export}: {n} embeddings of dimension {export['embeddings'].shape[1]} "
          f"(model {export['model']}, split {export['split']}, shards {data_path})")
    if n > args.max_points:
        keep = np.sort(np.random.default_rng(args.seed).choice(n, size=args.max_points, replace=False))
        print(f"sampled {args.max_points} of {n} rows uniformly without replacement (--max-points {args.max_points}, --seed {args.seed})")
    else:
        keep = np.arange(n)
        print(f"using all {n} rows (--max-points {args.max_points})")
    embeddings, labels, rows = export["embeddings"][keep], export["labels"][keep], export["rows"][keep]

    if export["class_names"] is not None:
        names_list, source = export["class_names"], "the export's class_names attribute"
    elif shards.class_names is not None:
        names_list, source = shards.class_names, "the shards' class_names attribute"
    else:
        names_list, source = [], "none recorded: \"class <label>\""
    print(f"class names: {source}")

    def names(label):
        return names_list[label] if 0 <= label < len(names_list) else f"class {label}"

    try:  # before the minutes of t-SNE
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as e:
        raise InputError(f"{args.out_dir}: cannot create the output directory ({e.strerror or e}); choose another --out-dir") from None
    thumbnails = shards.thumbnails(rows, args.thumbnail_px)
    points = tsne_2d(embeddings, args.seed)
    title = f"t-SNE of {len(keep)} {export['split']} embeddings ({export['model']}, {os.path.basename(args.export)})"
    thumbnails_figure = draw_thumbnails(points, thumbnails, title)
    classes_figure = draw_classes(points, labels, names, title)
    save_png(thumbnails_figure, os.path.join(args.out_dir, "tsne_thumbnails.png"))
    save_png(classes_figure, os.path.join(args.out_dir, "tsne_classes.png"))


def run_curves(args):
    train, evals, notes = load_metrics(args.metrics_file)
    for note in notes:
        print(f"note: {note}")
    print(f"{args.metrics_file}: {len(train)} training records, {len(evals)} evaluations")
    save_png(draw_curves(train, evals, f"training curves of {args.metrics_file}"), args.out)


def positive_int(value):
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def main():
    parser = argparse.ArgumentParser(prog="pictures.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{tsne,curves}")

    tsne = commands.add_parser("tsne", help="t-SNE thumbnails and classes of an embedding export")
    tsne.add_argument("--export", required=True, metavar="E.h5", help="the file `dist_eval --export` wrote")
    tsne.add_argument("--out-dir", required=True, metavar="DIR", help="where tsne_thumbnails.png and tsne_classes.png go (created)")
    tsne.add_argument("--data-path", metavar="SHARDS", help="shard directory of the thumbnails (default: the export's data_path)")
    tsne.add_argument("--max-points", type=positive_int, default=3000, metavar="N", help="sample this many rows when there are more (default 3000)")
    tsne.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the sample and of t-SNE (default 0)")
    tsne.add_argument("--thumbnail-px", type=positive_int, default=20, metavar="PX", help="longer side of a thumbnail in pixels (default 20)")
    tsne.set_defaults(run=run_tsne)

    curves = commands.add_parser("curves", help="training loss, Recall@1 and MAP@R per epoch of a --metrics-file")
    curves.add_argument("--metrics-file", required=True, metavar="M.jsonl", help="the file `dist_train --metrics-file` wrote")
    curves.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    curves.set_defaults(run=run_curves)

    args = parser.parse_args()
    try:
        args.run(args)
    except InputError as e:
        sys.stdout.flush()  # what was said before comes before the error, also through one pipe
        print(f"pictures.py {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
